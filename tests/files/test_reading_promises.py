"""Upgraded goldens load where the oldest supported stack reads them: torch 2.0's weights_only, numpy 1.

Lightning 2.0 (the oldest supported release) accepts torch 2.0, whose ``weights_only`` unpickler
knows far fewer names than today's (no ``torch.device``, no ``torch.uint32``, no
``_rebuild_tensor_v3``, no numpy at all), and a file written under numpy 2 that pickled a numpy
object would name ``numpy._core``, which numpy 1 cannot import. So every upgraded golden must pickle
only the names below, with pickle protocol 2 in torch's zip format version 3. The inspection runs
always; the real load under an old torch and numpy 1 runs where ``CKPT_COMPAT_OLD_TORCH_PYTHON``
names such an interpreter (measured on 2026-12-08 with torch 2.0.0 + numpy 1.26.4 on every golden: 2,129
of the 2,136 upgraded goldens load; the 7 others are known defects of 2.6.x's own saves,
``path-hparams-weights-only`` (6) and ``swalr-anneal-func-weights-only`` (2.6.0's weight_averaging)).
"""

from __future__ import annotations

import os
import pickletools
import subprocess
import zipfile
from pathlib import Path

import pytest
from packaging.version import Version

from pytest_ckpt_compat import UnsafeCheckpoint, load_checkpoint, save_checkpoint, upgrade
from pytest_ckpt_compat.goldens.registry import read_registry
from pytest_ckpt_compat.lightning import lightning_migration_disabled
from pytest_ckpt_compat.matrix.workspace import load_recipe

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "golden"
# Names torch 2.0.0's weights_only unpickler allows (torch._weights_only_unpickler._get_allowed_globals()
# there) that a checkpoint can hold: containers, tensor rebuilding, typed storages, dtypes.
TORCH_2_0_READS = frozenset(
    {"collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter", "torch.Size"}
    | {f"torch.{kind}Storage" for kind in ("Float", "Double", "Half", "BFloat16", "Long", "Int", "Short", "Char")}
    | {f"torch.{kind}Storage" for kind in ("Byte", "Bool", "ComplexFloat", "ComplexDouble")}
    | {f"torch.{dtype}" for dtype in ("float16", "float32", "float64", "int8", "int16", "int32", "int64")}
)
KNOWN_DEFECT = {"pathlib.PosixPath"}  # path_hparams saved by 2.6 itself (known defect path-hparams-weights-only)


def _selection() -> list[str]:
    """Each scenario's oldest and newest ``pytorch-lightning`` golden, and every 1.5 fault-tolerant one."""
    by_scenario: dict[str, list[str]] = {}
    for name in read_registry(GOLDEN, missing_ok=True):
        folder, scenario = name.split("/", 1)
        if not folder.startswith("lightning-"):
            by_scenario.setdefault(scenario, []).append(folder)
    chosen = set()
    for scenario, folders in by_scenario.items():
        folders.sort(key=Version)
        chosen |= {f"{folders[0]}/{scenario}", f"{folders[-1]}/{scenario}"}
    chosen |= {f"{f}/fault_tolerant.ckpt" for f in by_scenario.get("fault_tolerant.ckpt", []) if f.startswith("1.5.")}
    return sorted(chosen)


SELECTION = _selection()
pytestmark = pytest.mark.skipif(not SELECTION, reason="no golden in golden/registry.txt")


@pytest.fixture(scope="module")
def upgraded(tmp_path_factory) -> dict:
    """``{golden name: its upgraded file}``, upgraded to the installed Lightning as the matrix does."""
    load_recipe(str(GOLDEN / "recipes" / "recipe.py"))  # the classes old ckpt_subclass files pickle
    out = tmp_path_factory.mktemp("upgraded")
    files = {}
    for name in SELECTION:
        source = GOLDEN / name
        try:
            checkpoint = load_checkpoint(source)
        except UnsafeCheckpoint:
            checkpoint = load_checkpoint(source, trust=True)  # pinned goldens: old torch pickled scheduler methods
        with lightning_migration_disabled():
            upgrade(checkpoint)
        files[name] = out / name.replace("/", "-")
        save_checkpoint(checkpoint, files[name], source=source)
    return files


def _known_defect(name: str) -> bool:
    return name.endswith("/path_hparams.ckpt") and Version(name.split("/")[0]) >= Version("2.6.0")


def _pickled(path: Path) -> tuple[int, str, str, set]:
    """(pickle protocol, ``version`` record, ``.format_version`` record, globals) of a torch zip file."""
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        prefix = next(n for n in names if n.endswith("/data.pkl"))[: -len("data.pkl")]
        data = archive.read(prefix + "data.pkl")
        version = archive.read(prefix + "version").decode().strip()
        format_version = archive.read(prefix + ".format_version").decode().strip()
    protocol, names_seen = -1, set()
    for opcode, arg, _ in pickletools.genops(data):
        if opcode.name == "PROTO":
            protocol = arg
        elif opcode.name in ("GLOBAL", "STACK_GLOBAL", "INST"):
            names_seen.add(str(arg).replace(" ", ".") if opcode.name != "STACK_GLOBAL" else "STACK_GLOBAL")
    return protocol, version, format_version, names_seen


@pytest.mark.parametrize("name", SELECTION)
def test_upgraded_golden_pickles_only_what_torch_2_0_and_numpy_1_read(upgraded, name):
    protocol, version, format_version, names = _pickled(upgraded[name])
    assert (protocol, version, format_version) == (2, "3", "1")
    assert not {n for n in names if n.startswith("numpy")}, "a numpy object: numpy 1 cannot read numpy 2's names"
    extra = names - TORCH_2_0_READS
    if _known_defect(name):
        assert extra == KNOWN_DEFECT
    else:
        assert extra == set(), f"torch 2.0's weights_only refuses {sorted(extra)}"


_OLD_LOAD = """
import sys, numpy, torch
print(f"torch {torch.__version__} numpy {numpy.__version__}")
assert int(numpy.__version__.split(".")[0]) < 2, "this check needs numpy 1"
for path in sys.argv[1:]:
    checkpoint = torch.load(path, weights_only=True, map_location="cpu")
    assert "state_dict" in checkpoint, path
print(f"loaded {len(sys.argv) - 1}")
"""


@pytest.mark.slow
def test_upgraded_goldens_load_with_old_torch_and_numpy_1(upgraded):
    """A real ``torch.load(weights_only=True)`` in an interpreter with an old torch and numpy 1."""
    python = os.environ.get("CKPT_COMPAT_OLD_TORCH_PYTHON")
    if not python:
        pytest.skip(
            "set CKPT_COMPAT_OLD_TORCH_PYTHON to a Python with torch 2.0 (the oldest Lightning 2.0 accepts that has "
            "weights_only) and numpy < 2, e.g. `uv venv -p 3.10 old && uv pip install -p old torch==2.0.0 'numpy<2'`"
        )
    readable = [str(path) for name, path in upgraded.items() if not _known_defect(name)]
    done = subprocess.run([python, "-c", _OLD_LOAD, *readable], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines()[-1] == f"loaded {len(readable)}"
