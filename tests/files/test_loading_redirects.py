"""Loading files whose pickled classes moved: redirects declared by a catalogue, per load, both loaders.

A real library is written to a temporary folder, a checkpoint is saved with its first release, and
the library is then "released" again with the class moved and renamed (the chemprop 2.0 → 2.1
story: ``teamlib.loss.MSELoss`` became ``teamlib.metrics.MSE``). Nothing is mocked: the files are
written by ``torch.save`` and read by the package's loader.
"""

from __future__ import annotations

import importlib
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from pytest_ckpt_compat.core import redirects
from pytest_ckpt_compat.core.catalogue import Catalogue, register_catalogue, unregister_catalogue
from pytest_ckpt_compat.core.errors import IncompatibleClass, MissingGlobal, NotPlainData, UnsafeCheckpoint
from pytest_ckpt_compat.files import redirecting
from pytest_ckpt_compat.files.loading import load_checkpoint
from pytest_ckpt_compat.files.writing import save_checkpoint

OLD_LIB = """
import torch


class MSELoss(torch.nn.Module):
    def __init__(self, task_weights=1.0):
        super().__init__()
        self.register_buffer("task_weights", torch.tensor([task_weights]))
"""
NEW_LIB = """
import torch


class MSE(torch.nn.Module):
    def __init__(self, task_weights=1.0):
        super().__init__()
        self.register_buffer("task_weights", torch.tensor([task_weights]))
"""


def _release(root, package: str, files: dict[str, str]) -> None:
    """Install ``files`` as ``package`` under ``root`` (replacing an earlier release) and forget old imports."""
    folder = root / package
    if folder.exists():
        for old in folder.glob("*.py"):
            old.unlink()
    folder.mkdir(exist_ok=True)
    (folder / "__init__.py").write_text("")
    for name, text in files.items():
        (folder / f"{name}.py").write_text(textwrap.dedent(text))
    for name in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
        del sys.modules[name]
    importlib.invalidate_caches()


@pytest.fixture
def old_file(tmp_path, monkeypatch):
    """A checkpoint saved with teamlib 1 (``teamlib.loss.MSELoss`` in the hyperparameters); teamlib 2 installed."""
    lib = tmp_path / "lib"
    lib.mkdir()
    monkeypatch.syspath_prepend(str(lib))
    _release(lib, "teamlib", {"loss": OLD_LIB})
    from teamlib.loss import MSELoss  # type: ignore[import-not-found]

    path = tmp_path / "old.ckpt"
    torch.save(
        {
            "pytorch-lightning_version": "2.6.6",
            "state_dict": {"w": torch.arange(3.0)},
            "hyper_parameters": {"criterion": MSELoss(0.5), "lr": 0.1},
        },
        path,
    )
    _release(lib, "teamlib", {"metrics": NEW_LIB})
    yield path
    _release(lib, "teamlib", {})


@pytest.fixture
def team_redirects(tmp_path):
    """A registered team catalogue whose unit declares the move (as a team's own catalogue would)."""
    folder = tmp_path / "team_migrations"
    folder.mkdir()
    (folder / "v2_0_0__10_loss_moved.py").write_text(
        '"""teamlib 2 moved the losses into teamlib.metrics and renamed them."""\n'
        'ID = "teamlib-2.0-losses-moved"\nVERSION = "2.0.0"\n'
        'REDIRECTS = {"teamlib.loss.MSELoss": "teamlib.metrics.MSE"}\n\n\n'
        "def upgrade(checkpoint):\n    return checkpoint\n"
    )
    register_catalogue(Catalogue(name="team", path=folder, version_key="team_version", target_version="2.0.0"))
    yield
    unregister_catalogue("team")


def test_without_a_redirect_the_moved_class_is_a_named_error(old_file):
    with pytest.raises(UnsafeCheckpoint, match=r"teamlib\.loss\.MSELoss"):
        load_checkpoint(old_file)
    with pytest.raises(MissingGlobal, match=r"pickles teamlib\.loss\.MSELoss, which cannot be imported"):
        load_checkpoint(old_file, trust=True)


def test_trusted_load_resolves_the_new_class_and_the_ledger_says_so(old_file, team_redirects):
    from teamlib.metrics import MSE  # type: ignore[import-not-found]

    checkpoint = load_checkpoint(old_file, trust=True)
    criterion = checkpoint["hyper_parameters"]["criterion"]
    assert type(criterion) is MSE
    assert torch.equal(criterion.task_weights, torch.tensor([0.5]))
    assert checkpoint["ckpt_compat"]["redirects"] == {"teamlib.loss.MSELoss": "teamlib.metrics.MSE"}


def test_the_upgraded_file_names_the_new_class_and_loads_without_any_redirect(old_file, team_redirects, tmp_path):
    out = tmp_path / "new.ckpt"
    save_checkpoint(load_checkpoint(old_file, trust=True), out, source=old_file)
    assert "teamlib.metrics.MSE" in torch.serialization.get_unsafe_globals_in_checkpoint(out)
    assert "teamlib.loss.MSELoss" not in torch.serialization.get_unsafe_globals_in_checkpoint(out)
    reloaded = torch.load(out, weights_only=False)
    assert type(reloaded["hyper_parameters"]["criterion"]).__name__ == "MSE"
    assert reloaded["ckpt_compat"]["redirects"] == {"teamlib.loss.MSELoss": "teamlib.metrics.MSE"}


def test_safe_load_gives_an_inert_stand_in_with_the_pickled_state(old_file, team_redirects):
    checkpoint = load_checkpoint(old_file)
    criterion = checkpoint["hyper_parameters"]["criterion"]
    assert isinstance(criterion, redirecting.RedirectedObject)
    assert (type(criterion).__module__, type(criterion).__qualname__) == ("teamlib.metrics", "MSE")
    assert type(criterion).redirected_from == "teamlib.loss.MSELoss"
    assert torch.equal(criterion.pickled_state["_buffers"]["task_weights"], torch.tensor([0.5]))
    assert "teamlib.metrics" not in sys.modules  # nothing named in the file was imported
    assert checkpoint["ckpt_compat"]["redirects"] == {"teamlib.loss.MSELoss": "teamlib.metrics.MSE"}


def test_a_safely_loaded_stand_in_is_not_written_the_error_says_use_trust(old_file, team_redirects, tmp_path):
    with pytest.raises(NotPlainData, match=r"teamlib\.metrics\.MSE, a redirected class.*--trust"):
        save_checkpoint(load_checkpoint(old_file), tmp_path / "out.ckpt")
    assert not (tmp_path / "out.ckpt").exists()


def test_a_module_redirect_moves_every_class_of_the_module(old_file, tmp_path):
    table = redirects.Redirects([("teamlib.loss.*", "teamlib.metrics.*", "test")])
    with pytest.raises(MissingGlobal, match=r"teamlib\.loss\.MSELoss \(redirected to teamlib\.metrics\.MSELoss\)"):
        load_checkpoint(old_file, trust=True, redirects=table)  # the module moved, the name did not: still named
    checkpoint = load_checkpoint(old_file, redirects=table)
    assert type(checkpoint["hyper_parameters"]["criterion"]).__qualname__ == "MSELoss"


def test_redirects_are_per_load_concurrent_loads_with_and_without_do_not_mix(old_file):
    table = redirects.Redirects([("teamlib.loss.MSELoss", "teamlib.metrics.MSE", "test")])

    def load(with_redirect: bool) -> str:
        try:
            checkpoint = load_checkpoint(old_file, redirects=table if with_redirect else redirects.EMPTY)
        except UnsafeCheckpoint:
            return "refused"
        return type(checkpoint["hyper_parameters"]["criterion"]).__qualname__

    wanted = [i % 2 == 0 for i in range(16)]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(load, wanted))
    assert results == ["MSE" if w else "refused" for w in wanted]


def test_stand_ins_are_made_per_load_never_shared(old_file):
    table = redirects.Redirects([("teamlib.loss.MSELoss", "teamlib.metrics.MSE", "test")])
    first = load_checkpoint(old_file, redirects=table)["hyper_parameters"]["criterion"]
    second = load_checkpoint(old_file, redirects=table)["hyper_parameters"]["criterion"]
    assert type(first) is not type(second)


# ------------------------------------------------------------------------ a layout that changed
LAYOUT_V1 = """
class Frame:
    def __init__(self, values):
        self.values = list(values)
"""
LAYOUT_V2_STATE = """
class Frame:
    def __init__(self, values):
        self._blocks = [list(values)]

    def __setstate__(self, state):
        self._blocks = state["_blocks"]  # the new release reads a field the old one never wrote
"""
LAYOUT_V1_REDUCE = """
class Index:
    def __init__(self, start, stop):
        self.start, self.stop = start, stop

    def __reduce__(self):
        return (Index, (self.start, self.stop))
"""
LAYOUT_V2_REDUCE = """
class Index:
    def __init__(self, spec):
        self.spec = spec
"""


@pytest.mark.parametrize(
    "old, new, expr, message",
    [
        (LAYOUT_V1, LAYOUT_V2_STATE, "Frame([1, 2])", r"tablelib\.frame\.Frame.*\(KeyError: '_blocks'\)"),
        (LAYOUT_V1_REDUCE, LAYOUT_V2_REDUCE, "Index(0, 4)", r"tablelib\.frame\.Index.*\(TypeError: .*__init__"),
    ],
    ids=["setstate-reads-a-new-field", "constructor-changed"],
)
def test_a_class_whose_pickle_layout_changed_is_incompatible_class_not_corrupt(
    tmp_path, monkeypatch, old, new, expr, message
):
    lib = tmp_path / "lib"
    lib.mkdir()
    monkeypatch.syspath_prepend(str(lib))
    _release(lib, "tablelib", {"frame": old})
    import tablelib.frame  # type: ignore[import-not-found]

    path = tmp_path / "old.ckpt"
    value = eval(expr, vars(tablelib.frame))  # noqa: S307 - a literal expression of this test
    torch.save({"pytorch-lightning_version": "2.6.6", "state_dict": {}, "hyper_parameters": {"table": value}}, path)
    _release(lib, "tablelib", {"frame": new})
    try:
        with pytest.raises(IncompatibleClass, match=message) as info:
            load_checkpoint(path, trust=True)
        assert info.value.exit_code == 11
        assert "pickle layout changed" in str(info.value)
    finally:
        _release(lib, "tablelib", {})


# ------------------------------------------------------------------------------ the command line
def test_cli_inspect_and_dry_run_show_the_redirects_upgrade_writes_the_new_class(old_file, team_redirects, capsys):
    from pytest_ckpt_compat.cli import main

    assert main(["inspect", str(old_file)]) == 0
    assert "redirect: teamlib.loss.MSELoss -> teamlib.metrics.MSE" in capsys.readouterr().out
    assert main(["upgrade", str(old_file), "--dry-run"]) == 0
    assert "    redirect teamlib.loss.MSELoss -> teamlib.metrics.MSE" in capsys.readouterr().out.splitlines()
    out = old_file.with_name("new.ckpt")
    assert main(["upgrade", str(old_file), "-o", str(out)]) == 1  # a safe load keeps a stand-in: not written
    assert "NotPlainData" in capsys.readouterr().err and not out.exists()
    assert main(["upgrade", str(old_file), "-o", str(out), "--trust"]) == 0
    assert "teamlib.metrics.MSE" in torch.serialization.get_unsafe_globals_in_checkpoint(out)
    assert main(["inspect", str(out), "--trust", "--json"]) == 0
    assert '"teamlib.loss.MSELoss": "teamlib.metrics.MSE"' in capsys.readouterr().out
