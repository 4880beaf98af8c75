"""Safe loading beyond Lightning's own globals: numpy data, threads, and trusted loads that cannot import."""

from __future__ import annotations

import pickle
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from pytest_ckpt_compat import MissingGlobal, UnsafeCheckpoint, load_checkpoint, save_checkpoint, upgrade
from pytest_ckpt_compat.cli import main
from pytest_ckpt_compat.files.loading import LegacyClassRef, numpy_globals

GOLDEN = Path(__file__).resolve().parents[2] / "golden"
RNG_PATH = (
    "loops",
    "fit_loop",
    "epoch_loop.state_dict",
    "dataloader_state_dict",
    "state",
    0,
    "dataset_state",
    0,
    "rng_states",
    "numpy",
)


def _get(mapping, path):
    for key in path:
        mapping = mapping[key]
    return mapping


@pytest.mark.parametrize("release", ["1.5.0", "1.5.10"])
def test_fault_tolerant_golden_with_numpy_rng_state_loads_safely(release, tmp_path):
    path = GOLDEN / release / "fault_tolerant.ckpt"
    safe, trusted = load_checkpoint(path), load_checkpoint(path, trust=True)
    kind, state, pos, has_gauss, gauss = _get(safe, RNG_PATH)
    assert (kind, pos, has_gauss, gauss) == tuple(_get(trusted, RNG_PATH)[i] for i in (0, 2, 3, 4))
    assert type(state) is np.ndarray and state.dtype == np.uint32 and state.shape == (624,)
    assert np.array_equal(state, _get(trusted, RNG_PATH)[1])
    # the metric reductions of the loop results come back as inert names, not torch functions
    reduce_fx = safe["loops"]["fit_loop"]["epoch_loop._results"]["items"]["training_step.train_loss"]["meta"][
        "reduce_fx"
    ]
    assert type(reduce_fx) is LegacyClassRef and (reduce_fx.__module__, reduce_fx.__qualname__) == ("torch", "mean")

    upgrade(safe, "2.6.6")
    out = tmp_path / "up.ckpt"
    save_checkpoint(safe, out, source=path)
    reloaded = torch.load(out, weights_only=True)  # no allowlist at all: the RNG state became a tensor
    dropped = reloaded["ckpt_compat"]["dropped"]["loops/fit_loop/epoch_loop.state_dict/dataloader_state_dict"]
    rng = _get(dropped, RNG_PATH[4:])
    assert rng[0] == "MT19937" and rng[1].dtype == torch.int64 and rng[1].tolist() == state.tolist()  # uint32 widened
    assert (
        reloaded["ckpt_compat"]["dropped"]["loops/fit_loop/epoch_loop._results"]["items"]["training_step.train_loss"][
            "meta"
        ]["reduce_fx"]
        == "torch.mean"
    )


def test_live_numpy_state_stays_numpy_and_reloads_with_the_numpy_globals(tmp_path):
    """Hand-made: a Noam-style scheduler keeps numpy arrays and scalars in its state."""
    sched = {"step_num": np.int64(7), "lrs": np.linspace(0, 1, 5), "warmup": np.array([1, 2], dtype=np.int32)}
    path = tmp_path / "noam.ckpt"
    torch.save({"pytorch-lightning_version": "2.5.0", "state_dict": {}, "lr_schedulers": [sched]}, path)
    ckpt = load_checkpoint(path)
    got = ckpt["lr_schedulers"][0]
    assert got["step_num"] == 7 and type(got["step_num"]) is np.int64
    assert np.array_equal(got["lrs"], sched["lrs"]) and got["warmup"].dtype == np.int32
    upgrade(ckpt, "2.6.6")
    out = tmp_path / "out.ckpt"
    save_checkpoint(ckpt, out, source=path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(out, weights_only=True)  # torch's own default refuses numpy ...
    with torch.serialization.safe_globals(list(numpy_globals())):
        again = torch.load(out, weights_only=True)  # ... and the documented numpy globals read it
    assert np.array_equal(again["lr_schedulers"][0]["lrs"], sched["lrs"])
    assert np.array_equal(load_checkpoint(out)["lr_schedulers"][0]["warmup"], sched["warmup"])


class _GetattrExploit:
    def __init__(self, name):
        self.name = name

    def __reduce__(self):
        return (getattr, (torch._C._VariableFunctionsClass, self.name))


def test_getattr_resolves_only_torch_reductions(tmp_path):
    path = tmp_path / "fx.ckpt"
    torch.save({"pytorch-lightning_version": "1.5.0", "fx": _GetattrExploit("sum")}, path)
    fx = load_checkpoint(path)["fx"]
    assert type(fx) is LegacyClassRef and fx.__qualname__ == "sum"
    torch.save({"pytorch-lightning_version": "1.5.0", "fx": _GetattrExploit("load")}, path)
    with pytest.raises(UnsafeCheckpoint):
        load_checkpoint(path)


def test_safe_loads_never_touch_the_process_wide_registry(tmp_path):
    before = torch.serialization.get_safe_globals()
    seen = []
    real = torch.serialization._weights_only_unpickler._add_safe_globals
    try:
        torch.serialization._weights_only_unpickler._add_safe_globals = lambda g: seen.append(g) or real(g)
        load_checkpoint(GOLDEN / "1.2.10" / "end_of_fit.ckpt")
    finally:
        torch.serialization._weights_only_unpickler._add_safe_globals = real
    assert seen == [] and torch.serialization.get_safe_globals() == before


def test_many_threads_load_old_goldens_at_once():
    """Lightning's test_legacy_ckpt_threading, on our loader: class-keyed callbacks need our allowlist."""
    files = [GOLDEN / r / "end_of_fit.ckpt" for r in ("0.10.0", "1.0.8", "1.2.10", "1.4.9", "1.5.10")]
    files.append(GOLDEN / "1.5.10" / "fault_tolerant.ckpt")
    expected = {f: load_checkpoint(f)["epoch"] for f in files}
    errors, results, start = [], [], threading.Barrier(12)

    def work(i):
        start.wait()
        for n in range(6):
            f = files[(i + n) % len(files)]
            try:
                results.append((f, load_checkpoint(f)["epoch"]))
            except Exception as exc:  # collected: the assertion below names it
                errors.append(f"{f.parent.name}/{f.name}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert len(results) == 72 and all(epoch == expected[f] for f, epoch in results)


def test_trusted_load_of_a_class_that_cannot_be_imported_is_named(tmp_path, monkeypatch, capsys):
    (tmp_path / "gone_module.py").write_text("class Gone:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import gone_module

    torch.save({"pytorch-lightning_version": "1.2.0", "hparams": gone_module.Gone()}, tmp_path / "g.ckpt")
    monkeypatch.delitem(sys.modules, "gone_module")
    (tmp_path / "gone_module.py").unlink()  # the module is gone, as after an uninstall
    with pytest.raises(MissingGlobal, match=r"gone_module\.Gone.*cannot be imported") as info:
        load_checkpoint(tmp_path / "g.ckpt", trust=True)
    assert info.value.name == "gone_module.Gone" and info.value.exit_code == 10
    capsys.readouterr()
    assert main(["upgrade", str(tmp_path / "g.ckpt"), "-o", str(tmp_path / "o.ckpt"), "--trust"]) == 10
    err = capsys.readouterr().err
    assert "gone_module.Gone" in err and "Traceback" not in err and "corrupt" not in err
    assert not (tmp_path / "o.ckpt").exists()
