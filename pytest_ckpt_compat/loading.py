"""Safe loading: ``torch.load(weights_only=True)`` with a small, curated allowlist.

Old Lightning files pickle a few of Lightning's own globals: callback *classes* as dict keys
(0.10 – 1.4) and ``AttributeDict`` hyperparameters (0.8 – 1.0.7). The allowlist maps exactly those
names, under both namespaces (``pytorch_lightning.*`` and ``lightning.pytorch.*``), to inert
stand-ins: a marker class that only carries the pickled name, and the builtin ``dict``. Nothing is
imported from the names in the file, so loading needs neither namespace installed and runs no
code. Everything else (user classes, OmegaConf, argparse helpers, arbitrary objects) needs
``trust=True``, which unpickles normally (with Lightning's legacy shims and a namespace redirect).
It is applied with torch's ``safe_globals`` context manager, never the process-wide registry.

Sharded checkpoints are directories: only their small metadata file is read (``meta.pt`` for
FSDP/ModelParallel, ``checkpoint/mp_rank_00_model_states.pt`` for DeepSpeed).
"""
from __future__ import annotations

import contextlib
import functools
import importlib
import os
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch

from .errors import CheckpointNotFound, CorruptCheckpoint, UnsafeCheckpoint

_NAMESPACES = ("pytorch_lightning", "lightning.pytorch")

# Lightning's built-in callbacks whose *class* was pickled as a ``callbacks`` key (0.10 – 1.4).
_CALLBACK_CLASSES = (
    "callbacks.model_checkpoint.ModelCheckpoint",
    "callbacks.early_stopping.EarlyStopping",
    "callbacks.lr_monitor.LearningRateMonitor",
    "callbacks.gpu_stats_monitor.GPUStatsMonitor",
    "callbacks.gradient_accumulation_scheduler.GradientAccumulationScheduler",
    "callbacks.progress.ProgressBar",
    "callbacks.progress.ProgressBarBase",
    "callbacks.progress.tqdm_progress.TQDMProgressBar",
    "callbacks.stochastic_weight_avg.StochasticWeightAveraging",
    "callbacks.timer.Timer",
    "callbacks.finetuning.BackboneFinetuning",
    "callbacks.finetuning.BaseFinetuning",
    "callbacks.pruning.ModelPruning",
    "callbacks.quantization.QuantizationAwareTraining",
    "callbacks.lambda_function.LambdaCallback",
    "callbacks.base.Callback",
    "callbacks.callback.Callback",
)
# Pickled ``AttributeDict`` hyperparameters are a plain dict subclass with no instance state.
_DICT_CLASSES = ("utilities.parsing.AttributeDict",)
_FABRIC_DICT_CLASSES = ("lightning.fabric.utilities.data.AttributeDict", "lightning_fabric.utilities.data.AttributeDict")


class LegacyClassRef(type):
    """Metaclass of the stand-ins for pickled callback classes: they carry the pickled name only."""

    def __repr__(cls) -> str:
        return f"<pickled class {cls.__module__}.{cls.__qualname__}>"


@functools.lru_cache(maxsize=None)
def legacy_class_ref(module: str, qualname: str) -> type:
    """The (cached) stand-in class for ``module.qualname``."""
    ref = LegacyClassRef(qualname.rsplit(".", 1)[-1], (), {"__module__": module, "__qualname__": qualname})
    return ref


@functools.lru_cache(maxsize=None)
def allowlist() -> tuple:
    """``(object, "pickled.name")`` pairs for ``torch.serialization.safe_globals``."""
    pairs: list[tuple[Any, str]] = []
    for namespace in _NAMESPACES:
        for suffix in _CALLBACK_CLASSES:
            module, _, name = f"{namespace}.{suffix}".rpartition(".")
            pairs.append((legacy_class_ref(module, name), f"{module}.{name}"))
        for suffix in _DICT_CLASSES:
            pairs.append((dict, f"{namespace}.{suffix}"))
    pairs.extend((dict, name) for name in _FABRIC_DICT_CLASSES)
    return tuple(pairs)


def checkpoint_file(path: str | os.PathLike) -> Path:
    """The file that holds a checkpoint's Lightning state (the metadata file of a sharded directory)."""
    path = Path(path)
    if not path.is_dir():
        return path
    for candidate in (path / "meta.pt", path / "checkpoint" / "mp_rank_00_model_states.pt"):
        if candidate.is_file():
            return candidate
    raise CorruptCheckpoint(
        f"{path} is a directory but not a sharded Lightning checkpoint: no meta.pt (FSDP/ModelParallel) "
        "and no checkpoint/mp_rank_00_model_states.pt (DeepSpeed)"
    )


def is_zip_checkpoint(path: str | os.PathLike) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) == b"PK\x03\x04"


def load_checkpoint(path: str | os.PathLike, *, trust: bool = False, map_location: Any = "cpu") -> dict:
    """Load a checkpoint file (or a sharded directory's metadata) without running pickled code.

    Zip-format files are memory-mapped, so tensors are not read until used and the writer can
    carry their records over unchanged. ``trust=True`` allows arbitrary globals: use it only for
    files whose origin you trust (or that passed a hash check).
    """
    file = checkpoint_file(path)
    if not file.exists():
        raise CheckpointNotFound(f"no such checkpoint: {file}")
    if file.stat().st_size == 0:
        raise CorruptCheckpoint(f"{file} is empty")
    zipped = is_zip_checkpoint(file)
    try:
        if trust:
            with _legacy_shims():
                return torch.load(file, map_location=map_location, weights_only=False, pickle_module=_redirecting_pickle, mmap=zipped or None)
        with torch.serialization.safe_globals(list(allowlist())):
            return torch.load(file, map_location=map_location, weights_only=True, mmap=zipped or None)
    except pickle.UnpicklingError as exc:
        if re.search(r"Unsupported (global|class)|not an allowed global|Trying to call reduce", str(exc)):
            raise UnsafeCheckpoint(str(file), _unsafe_globals(file, exc, zipped), _short_reason(exc)) from None
        raise CorruptCheckpoint(f"{file} is not a readable torch checkpoint: {_short_reason(exc) or _first_line(exc)}") from exc
    except (EOFError, RuntimeError, ValueError, zipfile.BadZipFile, OSError, KeyError, AttributeError, TypeError) as exc:
        if isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError)):
            raise
        raise CorruptCheckpoint(f"{file} is not a readable torch checkpoint (truncated or corrupt?): {type(exc).__name__}: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


def _short_reason(exc: BaseException) -> str:
    match = re.search(r"WeightsUnpickler error:\s*([^\n]+)", str(exc))
    return match.group(1).strip() if match else ""


def _unsafe_globals(file: Path, exc: BaseException, zipped: bool) -> list[str]:
    """Every offending global for zip files (torch can list them); the first one otherwise."""
    allowed = {name for _, name in allowlist()}
    if zipped:
        with contextlib.suppress(Exception):
            return sorted(set(torch.serialization.get_unsafe_globals_in_checkpoint(file)) - allowed)
    found = re.findall(r"GLOBAL ([\w.]+)", str(exc))
    return sorted(set(found) - allowed) or ["(see the torch error)"]


class _RedirectingUnpickler(pickle.Unpickler):
    """Trusted loads: resolve ``pytorch_lightning.*`` ↔ ``lightning.pytorch.*`` to whichever is installed."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return super().find_class(module, name)
        except (ImportError, AttributeError):
            for old, new in (("pytorch_lightning", "lightning.pytorch"), ("lightning.pytorch", "pytorch_lightning")):
                if module == old or module.startswith(old + "."):
                    return super().find_class(new + module[len(old):], name)
            raise


class _RedirectingPickleModule:
    """A ``pickle_module`` for ``torch.load`` whose Unpickler redirects Lightning's namespaces."""

    Unpickler = _RedirectingUnpickler
    load = staticmethod(pickle.load)
    __name__ = "pickle"


_redirecting_pickle = _RedirectingPickleModule()


@contextlib.contextmanager
def _legacy_shims():
    """Lightning's own shims for removed symbols old pickles refer to (``_gpus_arg_default``, ...)."""
    for module_name in ("lightning.pytorch.utilities.migration", "pytorch_lightning.utilities.migration"):
        try:
            patch = importlib.import_module(module_name).pl_legacy_patch
        except (ImportError, AttributeError):
            continue
        with patch():
            yield
        return
    yield
