"""Safe loading (issue 20): nothing a file does may outlive its load, or cost more than its size.

The crafted files are a few hand-written pickle opcodes inside a real torch archive, as an
attacker would write them; each test names the attack it reproduces.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from pytest_ckpt_compat import load_checkpoint
from pytest_ckpt_compat.core.errors import CorruptCheckpoint, UnsafeCheckpoint
from pytest_ckpt_compat.files.loading import legacy_class_ref
from tests.hardening.hardening_support import zip_with_pickle

GOLDEN = Path(__file__).resolve().parents[2] / "golden"
VERSION = "pytorch-lightning_version"


def _s(text: str) -> bytes:  # SHORT_BINUNICODE
    data = text.encode()
    return b"\x8c" + bytes([len(data)]) + data


def _global(module: str, name: str) -> bytes:  # STACK_GLOBAL
    return _s(module) + _s(name) + b"\x93"


def _checkpoint(*pairs: bytes) -> bytes:
    """Protocol-4 opcodes of ``{"pytorch-lightning_version": "2.0.0", <pairs>}``; each pair pushes key, value."""
    return b"\x80\x04}(" + _s(VERSION) + _s("2.0.0") + b"".join(pairs) + b"u."


def _build_then(target: bytes, slotstate: bytes, after: bytes = b"") -> bytes:
    """Push ``target``, BUILD it with ``(None, {slotstate})``, drop it, then ``after``; then a checkpoint."""
    return b"\x80\x04" + target + b"N}" + slotstate + b"\x86b0" + after + _checkpoint()[2:]


@pytest.fixture
def restore_shared_state():
    """Undo what the attacks would do to this process if they succeeded (so one failure does not spread)."""
    rebuild = torch._utils._rebuild_tensor_v2
    defaults = rebuild.__defaults__
    ref = legacy_class_ref("pytorch_lightning.callbacks.early_stopping", "EarlyStopping")
    yield
    rebuild.__defaults__ = defaults
    type.__setattr__(ref, "__qualname__", "EarlyStopping")
    type.__setattr__(ref, "__name__", "EarlyStopping")


def test_a_file_cannot_negate_the_tensors_of_the_next_file(tmp_path, restore_shared_state):
    """BUILD on the allow-listed ``_rebuild_tensor_v2`` set its ``__defaults__`` to ``({"neg": True},)``."""
    genuine = tmp_path / "genuine.ckpt"
    torch.save({VERSION: "2.0.0", "state_dict": {"w": torch.tensor([1.0, 2.0, 3.0])}}, genuine)
    crafted = _build_then(
        _global("torch._utils", "_rebuild_tensor_v2"), _s("__defaults__") + b"}" + _s("neg") + b"\x88s\x85s"
    )
    zip_with_pickle(tmp_path / "crafted.ckpt", crafted)
    with pytest.raises(UnsafeCheckpoint, match=r"BUILD on torch\._utils\._rebuild_tensor_v2"):
        load_checkpoint(tmp_path / "crafted.ckpt")
    assert load_checkpoint(genuine)["state_dict"]["w"].tolist() == [1.0, 2.0, 3.0]
    assert torch._utils._rebuild_tensor_v2.__defaults__ == (None,)


def test_a_refused_file_cannot_rename_a_cached_callback_stand_in(tmp_path, restore_shared_state):
    """BUILD renamed the shared EarlyStopping stand-in; the file was refused later (os.system), too late."""
    crafted = _build_then(
        _global("pytorch_lightning.callbacks.early_stopping", "EarlyStopping"),
        _s("__qualname__") + _s("ModelCheckpoint") + b"s",
        after=_global("os", "system") + b"0",
    )
    zip_with_pickle(tmp_path / "crafted.ckpt", crafted)
    with pytest.raises(UnsafeCheckpoint):
        load_checkpoint(tmp_path / "crafted.ckpt")
    keys = load_checkpoint(GOLDEN / "1.2.10" / "early_stop_waited.ckpt")["callbacks"]
    assert sorted(f"{k.__module__}.{k.__qualname__}" for k in keys) == [
        "pytorch_lightning.callbacks.early_stopping.EarlyStopping",
        "pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint",
    ]


def test_stand_ins_are_read_only():
    ref = legacy_class_ref("pytorch_lightning.callbacks.early_stopping", "EarlyStopping")
    with pytest.raises(AttributeError, match="read-only"):
        ref.__qualname__ = "ModelCheckpoint"
    assert ref.__qualname__ == "EarlyStopping"


def test_state_setting_on_data_the_file_created_still_works(tmp_path):
    """numpy arrays, their dtypes and a state dict's ``_metadata`` are rebuilt with BUILD: still allowed."""
    sd = torch.nn.Linear(2, 1).state_dict()
    ckpt = {VERSION: "2.0.0", "state_dict": sd, "arr": np.arange(3, dtype="i4"), "dt": np.dtype(">i4")}
    torch.save(ckpt, tmp_path / "c.ckpt")
    got = load_checkpoint(tmp_path / "c.ckpt")
    assert got["state_dict"]._metadata == sd._metadata
    assert got["arr"].tolist() == [0, 1, 2] and got["arr"].dtype == np.dtype("i4")
    assert got["dt"] == np.dtype(">i4") and np.dtype("i4").byteorder == "="  # the shared dtype is untouched


# 2 KB files that ask for memory by size (the UntypedStorage(n), Tensor(n), bytearray(1 GiB)).
SIZED = {
    "UntypedStorage": _global("torch.storage", "UntypedStorage") + b"J\x00\x00\x00\x10\x85R",
    "TypedStorage": _global("torch.storage", "TypedStorage") + b"J\x00\x00\x00\x04\x85R",
    "Tensor": _global("torch", "Tensor") + b"J\x00\x00\x00\x04\x85R",
    "Tensor-NEWOBJ": _global("torch", "Tensor") + b"J\x00\x00\x00\x04\x85\x81",
    "FloatTensor": _global("torch", "FloatTensor") + b"J\x00\x00\x00\x04\x85R",
    "bytearray": _global("builtins", "bytearray") + b"J\x00\x00\x00\x40\x85R",
    "ndarray": _global("numpy", "ndarray") + b"J\x00\x00\x00\x04\x85\x85R",
    "_reconstruct": _global("numpy.core.multiarray", "_reconstruct")
    + _global("numpy", "ndarray")
    + b"J\x00\x00\x00\x04\x85"
    + _s("f8")
    + b"\x87R",
}


@pytest.mark.parametrize("call", sorted(SIZED))
def test_allocation_by_size_is_bounded_by_the_file_size(tmp_path, call):
    path = zip_with_pickle(tmp_path / "bomb.ckpt", _checkpoint(_s("x"), SIZED[call]))
    assert path.stat().st_size < 2048
    with pytest.raises(CorruptCheckpoint, match=r"asks for \d+ bytes by size, more than a \d+-byte file may allocate"):
        load_checkpoint(path)


def test_memory_allocated_by_size_holds_zeros_not_process_memory(tmp_path):
    """Small requests stay allowed, but the storage comes back zero-filled (never heap contents)."""
    sized = _global("torch.storage", "UntypedStorage") + b"J\x00\x00\x01\x00\x85R"  # 65536 bytes
    tensor = _global("torch", "Tensor") + b"K\x08K\x08\x86R"
    path = zip_with_pickle(tmp_path / "small.ckpt", _checkpoint(_s("s"), sized, _s("t"), tensor))
    got = load_checkpoint(path)
    assert got["s"].nbytes() == 65536 and got["s"].tolist() == [0] * 65536
    assert got["t"].shape == (8, 8) and torch.equal(got["t"], torch.zeros(8, 8))


def test_a_large_file_may_allocate_what_it_holds(tmp_path):
    """The bound is relative: 2 MiB by size from a file that is itself over 2 MiB."""
    pad = _s("pad") + b"\x8e" + (3 << 20).to_bytes(8, "little") + bytes(3 << 20)  # BINBYTES8
    path = zip_with_pickle(
        tmp_path / "big.ckpt", _checkpoint(pad, _s("b"), _global("builtins", "bytearray") + b"J\x00\x00\x20\x00\x85R")
    )
    assert load_checkpoint(path)["b"] == bytearray(2 << 20)


def _nested_shared(depth: int) -> list:
    value: list = [1.0]
    for _ in range(depth):
        value = [value, value]  # one list, shared at every level: the pickle stays tiny
    return value


def test_a_structure_shared_at_every_level_is_refused_by_its_expanded_size(tmp_path):
    path = tmp_path / "nest.ckpt"
    torch.save({VERSION: "1.0.0", "state_dict": {}, "hyper_parameters": {"deep": _nested_shared(20)}}, path)
    assert path.stat().st_size < 4096
    with pytest.raises(CorruptCheckpoint, match="expands to more than 65536 nodes"):
        load_checkpoint(path)
    torch.save({VERSION: "1.0.0", "state_dict": {}, "hyper_parameters": {"deep": _nested_shared(8)}}, path)
    assert len(load_checkpoint(path)["hyper_parameters"]["deep"]) == 2  # small sharing (tied values) loads


_PEAK = """
import re, sys
from pytest_ckpt_compat import cli
# the peak of this process's own memory (VmHWM starts afresh at exec; ru_maxrss keeps pytest's from the fork)
mib = lambda: int(re.search(r"VmHWM:\\s*(\\d+)", open("/proc/self/status").read()).group(1)) // 1024
good, *bombs = sys.argv[1:]
assert cli.main(["upgrade", good, "-o", good + ".out"]) == 0
print("BASE", mib())
for bomb in bombs:
    print("CODE", cli.main(["upgrade", bomb, "-o", bomb + ".out"]), mib())
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="peak memory is read from /proc")
def test_amplification_bombs_cost_no_memory(tmp_path):
    """The issue's 2 KB files: a 20-deep shared nest (534 MiB, 16 s before), ``bytearray(1 GiB)``, ``Tensor(2**26)``."""
    good = tmp_path / "good.ckpt"
    torch.save({VERSION: "1.0.0", "state_dict": {"w": torch.ones(4)}, "epoch": 0, "global_step": 1}, good)
    nest = tmp_path / "nest.ckpt"
    torch.save({VERSION: "1.0.0", "state_dict": {}, "hyper_parameters": {"deep": _nested_shared(20)}}, nest)
    bomb = zip_with_pickle(tmp_path / "bytearray.ckpt", _checkpoint(_s("x"), SIZED["bytearray"]))
    tensor = zip_with_pickle(tmp_path / "tensor.ckpt", _checkpoint(_s("x"), SIZED["Tensor"]))
    result = subprocess.run(
        [sys.executable, "-c", _PEAK, *map(str, (good, nest, bomb, tensor))],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    lines = result.stdout.split()
    base = int(lines[lines.index("BASE") + 1])
    runs = [(int(lines[i + 1]), int(lines[i + 2])) for i, word in enumerate(lines) if word == "CODE"]
    print(f"peak RSS: {base} MiB after a genuine upgrade, {[peak for _, peak in runs]} MiB after each bomb")
    assert [code for code, _ in runs] == [CorruptCheckpoint.exit_code] * 3, result.stderr[-2000:]
    assert runs[-1][1] < base + 64, (base, runs)
