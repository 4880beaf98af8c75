"""Hyperparameters: ``pathlib`` paths become their string.

Why: ``save_hyperparameters()`` keeps a ``pathlib.Path`` argument as is, so the file pickles
``pathlib.PosixPath`` (or ``WindowsPath``). ``torch.load(weights_only=True)`` refuses that class, and
Lightning 2.6.0 (PR #21072) loads with torch's default ``weights_only`` (``True`` since torch 2.6):
the file no longer resumes or loads there (reported e.g. by neural-head-avatars #39, ai4g-flood
#15). A ``PosixPath`` cannot even be created on Windows (and a ``WindowsPath`` not on Linux), so a
file saved on one system fails on the other under any loader. The string (``str(path)``, the
spelling of the system that saved it) is what the path means and is plain data; a module that
needs a ``Path`` builds one from it (``Path(hparams.data_dir)`` works for both). Walks
``hyper_parameters`` and ``datamodule_hyper_parameters`` (dicts, lists, tuples), nothing else.
Files saved by 2.6.x itself keep their paths (not a format change of an older release): see the
matrix's known defects.
When: Lightning 2.6.0 (PR #21072, torch >= 2.6 loads weights_only by default).
Reader-side (``READER_SIDE``): it runs for every target, 2.0.0 included, because the refusal is
torch's, not the format's: an older Lightning that leaves ``weights_only`` to torch's default (2.0.0
does) refuses the same file under torch >= 2.6.
"""

from __future__ import annotations

from pathlib import PurePath

from pytest_ckpt_compat import ops

ID = "pl-2.6.0-hparams-paths-as-strings"
VERSION = "2.6.0"
ORDER = 30
CHANGES_TENSORS = False
READER_SIDE = (
    "torch >= 2.6 loads weights_only by default: a Lightning that leaves it to torch (2.0.0 does) refuses "
    "pathlib classes, and the other OS cannot make them, so the rewrite applies whatever the target"
)

KEYS = ("hyper_parameters", "datamodule_hyper_parameters")


def _strings(value, where: str, found: list):
    if isinstance(value, PurePath):
        found.append(where)
        return str(value)
    if isinstance(value, dict):
        for key in list(value):
            value[key] = _strings(value[key], f"{where}.{key}", found)
        return value
    if isinstance(value, list):
        value[:] = [_strings(v, f"{where}[{i}]", found) for i, v in enumerate(value)]
        return value
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(_strings(v, f"{where}[{i}]", found) for i, v in enumerate(value))
    return value


def upgrade(checkpoint: dict) -> dict:
    found: list = []
    for key in KEYS:
        if key in checkpoint:
            checkpoint[key] = _strings(checkpoint[key], key, found)
    if found:
        ops.note(checkpoint, ID, "paths as strings: " + ", ".join(found))
    return checkpoint
