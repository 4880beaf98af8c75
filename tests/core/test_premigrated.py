"""Files that Lightning's own ``upgrade_checkpoint`` already migrated: detected, repaired, resumed.

Every file here is a real golden, copied and run through the installed Lightning's real
``upgrade_checkpoint`` (``main()`` of ``lightning.pytorch.utilities.upgrade_checkpoint`` and of
``pytorch_lightning.utilities.upgrade_checkpoint``, in process). Lightning's ``torch.load`` there
takes torch's weights-only default, which refuses the pickled callback classes of pre-1.5 files;
``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` is what its error message tells a user to set.
The reference is our upgrade of the untouched golden (``Workspace.upgraded``), and for the resumes
the golden's truth (``checks.check_resume`` with ``plain=``: plain Lightning, its own migration
proven a no-op on our output).
"""

from __future__ import annotations

import copy
import importlib
import json
import re
import shutil
import sys
import warnings
from pathlib import Path

import pytest

from pytest_ckpt_compat.cli import main
from pytest_ckpt_compat.core import premigrated, versions
from pytest_ckpt_compat.core.callback_keys import unresolved
from pytest_ckpt_compat.core.engine import plan, upgrade
from pytest_ckpt_compat.core.errors import UnsafeCheckpoint
from pytest_ckpt_compat.files.loading import load_checkpoint
from pytest_ckpt_compat.files.writing import save_checkpoint
from pytest_ckpt_compat.goldens.store import GoldenStore
from pytest_ckpt_compat.matrix.checks import check_resume
from pytest_ckpt_compat.matrix.workspace import Workspace
from pytest_ckpt_compat.ops import differences as _diff

GOLDEN = Path(__file__).resolve().parents[2] / "golden"
CURRENT = versions.installed_lightning_version()
NAMESPACES = versions.LIGHTNING_MODULES

# One or more per era: 0.10 (flat callback keys), 1.0 - 1.5 counters ("+1" global_step, several
# optimizers, accumulation, two ModelCheckpoints, an unfinished epoch), 1.6.0 - 1.6.4 loops without
# the logger step, 1.6.5 - 1.9 complete loops. (Fault-tolerant 1.4/1.5 files make Lightning's own
# migration raise KeyError, so no Lightning-migrated copy of them can exist.)
REPRESENTATIVE = [
    "0.10.0/end_of_fit.ckpt",
    "0.10.0/mid_epoch.ckpt",
    "1.0.4/end_of_fit.ckpt",
    "1.2.10/grad_accum.ckpt",
    "1.2.10/mid_epoch.ckpt",
    "1.4.9/manual_opt.ckpt",
    "1.5.10/two_checkpoints.ckpt",
    "1.6.0/manual_opt.ckpt",
    "1.6.0/mid_epoch.ckpt",
    "1.6.4/end_of_fit.ckpt",
    "1.6.5/mid_epoch.ckpt",
    "1.9.5/grad_accum.ckpt",
    "2.0.0/end_of_fit.ckpt",
    "2.6.0/mid_epoch.ckpt",  # 2.x: Lightning only re-stamps the version
]
# What Lightning's own tool cannot re-save (measured, see test_lightning_cannot_resave_...): the hparams of
# argparse_hparams files saved before 1.2.8 reference ``argparse_utils._gpus_arg_default`` (gone in 1.2.8, Lightning
# #6898); its pl_legacy_patch unpickles that as a local lambda, which its torch.save cannot pickle (AttributeError).
CANNOT_RESAVE = ("argparse_hparams", "1.2.8")  # this scenario, saved by an older release
LAMBDA = "Can't pickle local object 'pl_legacy_patch.__enter__.<locals>.<lambda>'"


def _cannot_resave(golden) -> bool:
    scenario, fixed_in = CANNOT_RESAVE
    return golden.scenario == scenario and versions.parse(golden.saved_version) < versions.parse(fixed_in)


def _run_tool(tool, path: Path) -> None:
    """Lightning's ``upgrade_checkpoint`` on a file or folder, as a user runs it (its error message's setting)."""
    with pytest.MonkeyPatch.context() as mp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mp.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
        mp.setattr(sys, "argv", ["upgrade_checkpoint", str(path), "--map-to-cpu"])
        tool.main()


# resumed for real (a few seconds each): one per era, both namespaces' tools
RESUMED = [
    ("lightning.pytorch", "0.10.0/end_of_fit.ckpt"),
    ("lightning.pytorch", "1.2.10/mid_epoch.ckpt"),
    ("pytorch_lightning", "1.5.10/two_checkpoints.ckpt"),
    ("lightning.pytorch", "1.6.0/manual_opt.ckpt"),
    ("pytorch_lightning", "1.6.0/mid_epoch.ckpt"),
    ("lightning.pytorch", "1.9.5/grad_accum.ckpt"),
]


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Workspace:
    workspace = Workspace(
        GoldenStore(GOLDEN, tmp_path_factory.mktemp("cache"), progressbar=False), tmp_path_factory.mktemp("ws")
    )
    workspace.recipe  # pickled recipe classes (subclassed callbacks) must be importable for Lightning's load
    return workspace


@pytest.fixture(scope="module")
def migrated(ws, tmp_path_factory) -> dict:
    """``{(namespace, golden name): path}``: copies upgraded by that namespace's ``upgrade_checkpoint``."""
    out = {}
    for namespace in NAMESPACES:
        try:
            tool = importlib.import_module(namespace + ".utilities.upgrade_checkpoint")
        except ImportError:
            continue  # that package is not installed: its cases skip (``_copy``)
        root = tmp_path_factory.mktemp(namespace.replace(".", "_"))
        for name in REPRESENTATIVE:
            dest = root / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ws.fetch(ws.store.get(name)), dest)
            out[namespace, name] = dest
        _run_tool(tool, root)  # the folder, recursively, as a user runs it
    return out


def _copy(migrated: dict, namespace: str, name: str) -> Path:
    if (namespace, name) not in migrated:
        pytest.skip(f"{namespace} is not installed")
    return migrated[namespace, name]


def _load(path: Path) -> dict:
    try:
        return load_checkpoint(path)
    except UnsafeCheckpoint:
        return load_checkpoint(path, trust=True)  # the recipe's pickled callback subclass


def _expected_repairs(original: dict) -> list:
    """What the repair must report, from the untouched golden's own counters."""
    saved = versions.parse(original[versions.VERSION_KEY])
    epoch, step = original["epoch"], original["global_step"]
    if saved < versions.parse("1.6.0"):
        return [
            f"removed loops.fit_loop that Lightning synthesised from epoch={epoch!r}, global_step={step!r} "
            "(epoch progress restarting at 0, the saved +1 global_step, logger step 0); rebuilt from the counters"
        ]
    if saved < versions.parse("1.6.5"):
        return [
            f"removed _batches_that_stepped={step!r} (Lightning's default: global_step); recomputed as 1.6.5 saves it"
        ]
    return []


def _same_as_ours(repaired: dict, ours: dict, namespace: str) -> list:
    """``_diff`` of the two upgrades; the ledger's record of which pickled class a pre-1.5 callback
    state was keyed by names the class as Lightning re-pickled it (its own namespace)."""
    repaired, ours = copy.copy(repaired), copy.deepcopy({k: v for k, v in ours.items() if k != "state_dict"})
    repaired.pop("state_dict")
    for record in (ours.get("ckpt_compat") or {}).get("callback_keys", {}).values():
        record["from"] = record["from"].replace("pytorch_lightning.", namespace + ".", 1)
    return _diff(repaired, ours)


@pytest.mark.parametrize("namespace", NAMESPACES)
@pytest.mark.parametrize("name", REPRESENTATIVE)
def test_lightning_migrated_copy_upgrades_to_our_upgrade_of_the_original(ws, migrated, namespace, name):
    golden = ws.store.get(name)
    original = ws.load(golden)
    checkpoint = _load(_copy(migrated, namespace, name))
    assert premigrated.detect(checkpoint) == {"legacy_version": golden.saved_version, "by": CURRENT}
    if versions.parse(golden.saved_version) < versions.parse("1.6.0"):  # the damage, as measured
        assert checkpoint["loops"] == {
            "fit_loop": premigrated.synthesised_fit_loop(original["epoch"], original["global_step"], layout_2_0=True)
        }
    upgrade(checkpoint)
    record = checkpoint["ckpt_compat"].pop(premigrated.RECORD_KEY)
    assert record == {
        "legacy_version": golden.saved_version,
        "by": CURRENT,
        "repaired": _expected_repairs(original),
        "not_repaired": [],
    }
    assert _same_as_ours(checkpoint, ws.upgraded(golden)[0], namespace) == []
    ours_weights = ws.upgraded(golden)[0]["state_dict"]
    assert _diff(checkpoint["state_dict"], ours_weights) == []


@pytest.mark.parametrize(
    ("name", "damage"),
    [
        (
            "1.2.10/grad_accum.ckpt",
            {
                "/loops/fit_loop/epoch_progress/current/processed: 0 -> 2",  # resumes at epoch 0, not 2
                # +1
                "/loops/fit_loop/epoch_loop.automatic_optimization.optim_progress/optimizer/step/total/completed: "
                "5 -> 4",
                "/loops/fit_loop/epoch_loop.state_dict/_batches_that_stepped: 0 -> 4",  # logger step from 0
                # stale 1.x keys next to the 2.x ones
                "/loops/fit_loop/epoch_loop.optimizer_loop.optim_progress removed",
                "/loops/fit_loop/epoch_loop.manual_loop.optim_step_progress removed",
            },
        ),
        ("1.6.0/manual_opt.ckpt", {"/loops/fit_loop/epoch_loop.state_dict/_batches_that_stepped: 12 -> 8"}),
        ("1.6.0/mid_epoch.ckpt", {"/loops/fit_loop/epoch_loop.state_dict/_batches_that_stepped: 6 -> 5"}),
    ],
)
def test_without_the_repair_the_damage_is_back(ws, migrated, monkeypatch, name, damage):
    """The regression the repair fixes, measured: the catalogue alone on Lightning's output."""
    monkeypatch.setattr(premigrated, "repair", lambda checkpoint: None)
    checkpoint = _load(_copy(migrated, "lightning.pytorch", name))
    upgrade(checkpoint)
    diff = set(_same_as_ours(checkpoint, ws.upgraded(ws.store.get(name))[0], "lightning.pytorch"))
    assert damage <= diff


@pytest.mark.parametrize(("namespace", "name"), RESUMED)
def test_lightning_migrated_copy_resumes_at_the_right_epoch_and_step(ws, migrated, tmp_path, namespace, name):
    """Our upgrade of Lightning's output, resumed by plain Lightning: exact state, epoch and step."""
    golden = ws.store.get(name)
    checkpoint, stated = _load(_copy(migrated, namespace, name)), None
    if unresolved(ws.upgraded(golden)[0]):  # 0.10/1.0 record no monitor: state it, as a user is told to
        stated = ws.recipe._callbacks(ws.recipe.CLASSES[3], str(tmp_path), golden.scenario)
    upgrade(checkpoint, callbacks=stated)
    dest = tmp_path / "plain" / Path(name).name
    dest.parent.mkdir()
    save_checkpoint(checkpoint, dest, source=_copy(migrated, namespace, name))
    check_resume(ws, golden, tmp_path, plain=dest)


@pytest.mark.parametrize(
    ("namespace", "name"),
    [("lightning.pytorch", "0.10.0/end_of_fit.ckpt"), ("pytorch_lightning", "1.6.0/mid_epoch.ckpt")],
)
def test_lightning_migrated_file_resumes_with_the_one_line(ws, migrated, tmp_path, namespace, name):
    """``CheckpointUpgrade`` on Lightning's output as it is on disk (it upgrades, repairs and, for
    0.10, keys the callback states by the live callbacks, on load)."""
    check_resume(ws, ws.store.get(name), tmp_path, integration=_copy(migrated, namespace, name))


@pytest.mark.parametrize("name", ["1.2.10/mid_epoch.ckpt", "1.6.0/manual_opt.ckpt"])
def test_files_migrated_by_lightning_1_9_keep_the_1_6_loop_names_and_are_repaired(ws, name):
    """Lightning 1.9.x ran the same migrations up to 1.9.0 (unchanged since, bar type hints) and
    stamped its own version: reproduced with the installed ``migrate_checkpoint(target_version="1.9.0")``."""
    utils = importlib.import_module(versions.lightning_module_name() + ".utilities.migration.utils")
    golden = ws.store.get(name)
    checkpoint = ws.load(golden)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        utils.migrate_checkpoint(checkpoint, target_version="1.9.0")
    checkpoint[versions.VERSION_KEY] = "1.9.5"
    assert "epoch_loop.batch_loop.optimizer_loop.optim_progress" in checkpoint["loops"]["fit_loop"]
    upgrade(checkpoint)
    record = checkpoint["ckpt_compat"].pop(premigrated.RECORD_KEY)
    assert (record["by"], record["repaired"], record["not_repaired"]) == (
        "1.9.5",
        _expected_repairs(ws.load(golden)),
        [],
    )
    assert _same_as_ours(checkpoint, ws.upgraded(golden)[0], "pytorch_lightning") == []


def test_a_loop_that_is_not_lightnings_synthesis_is_kept_and_reported(ws, migrated, tmp_path, capsys):
    import torch

    # edited as a user would: a real load (Lightning's classes), one count changed, a real save
    checkpoint = torch.load(_copy(migrated, "lightning.pytorch", "1.2.10/mid_epoch.ckpt"), weights_only=False)
    checkpoint["loops"]["fit_loop"]["epoch_progress"]["current"]["processed"] = 2  # not Lightning's synthesis
    path = tmp_path / "edited.ckpt"
    torch.save(checkpoint, path)
    checkpoint = _load(path)
    record = premigrated.repair(copy.deepcopy(checkpoint))
    epoch, step = checkpoint["epoch"], checkpoint["global_step"]
    assert record["repaired"] == []
    assert record["not_repaired"] == [
        "loops.fit_loop of this pre-1.6 file is not what Lightning synthesises from epoch/global_step "
        f"(epoch={epoch}, global_step={step}): kept as it is; its epoch and step progress may be Lightning's (wrong) "
        "ones"
    ]
    assert main(["inspect", str(path)]) == 0
    assert (
        f"lightning_migrated: from 1.2.10 by Lightning {CURRENT}; NOT repaired: loops.fit_loop of this pre-1.6"
        in capsys.readouterr().out
    )


def test_a_logger_step_that_is_not_lightnings_default_is_kept_and_reported(ws, migrated):
    checkpoint = _load(_copy(migrated, "lightning.pytorch", "1.6.0/mid_epoch.ckpt"))
    checkpoint["loops"]["fit_loop"]["epoch_loop.state_dict"]["_batches_that_stepped"] = 3
    record = premigrated.repair(checkpoint)
    assert record["repaired"] == [] and record["not_repaired"] == [
        "_batches_that_stepped=3 is not Lightning's default (global_step=6): kept as it is"
    ]
    assert checkpoint["loops"]["fit_loop"]["epoch_loop.state_dict"]["_batches_that_stepped"] == 3


def test_only_lightnings_output_is_detected(ws, migrated):
    golden = ws.store.get("1.2.10/mid_epoch.ckpt")
    assert premigrated.detect(ws.load(golden)) is None  # untouched: no legacy key
    assert premigrated.detect(ws.upgraded(golden)[0]) is None  # ours: the ledger
    assert premigrated.detect(ws.load(ws.store.get("lightning-2.6.6/end_of_fit.ckpt"))) is None
    repaired = _load(_copy(migrated, "lightning.pytorch", "1.2.10/mid_epoch.ckpt"))
    upgrade(repaired)
    again = copy.deepcopy({k: v for k, v in repaired.items() if k != "state_dict"})
    upgrade(repaired)  # a second upgrade: nothing detected, nothing changed, the record kept
    assert _diff({k: v for k, v in repaired.items() if k != "state_dict"}, again) == []


def test_plan_is_pure_and_names_the_units_of_the_legacy_version(ws, migrated):
    checkpoint = _load(_copy(migrated, "lightning.pytorch", "1.2.10/mid_epoch.ckpt"))
    before = copy.deepcopy({k: v for k, v in checkpoint.items() if k != "state_dict"})
    steps = [m.id for m in plan(checkpoint)]
    assert _diff({k: v for k, v in checkpoint.items() if k != "state_dict"}, before) == []
    assert steps == [m.id for m in plan(ws.load(ws.store.get("1.2.10/mid_epoch.ckpt")))]


def test_inspect_shows_what_was_repaired(migrated, capsys):
    path = _copy(migrated, "pytorch_lightning", "1.6.0/manual_opt.ckpt")
    before = path.read_bytes()
    assert main(["inspect", str(path)]) == 0
    assert (
        f"lightning_migrated: from 1.6.0 by Lightning {CURRENT}; repaired: removed _batches_that_stepped=12 "
        "(Lightning's default: global_step); recomputed as 1.6.5 saves it"
    ) in capsys.readouterr().out
    assert main(["inspect", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["lightning_migrated"]["repaired"] == [
        "removed _batches_that_stepped=12 (Lightning's default: global_step); recomputed as 1.6.5 saves it"
    ]
    assert path.read_bytes() == before  # inspect never writes


def test_upgrade_says_what_it_repairs_dry_run_and_real(migrated, tmp_path, capsys):
    path = _copy(migrated, "pytorch_lightning", "1.6.0/manual_opt.ckpt")
    before, listing = path.read_bytes(), sorted(path.parent.iterdir())
    said = (
        f"already migrated by Lightning, from 1.6.0 by Lightning {CURRENT}; repaired: removed _batches_that_stepped=12 "
        "(Lightning's default: global_step); recomputed as 1.6.5 saves it"
    )
    assert main(["upgrade", str(path), "--dry-run"]) == 0
    assert said.replace("Lightning, from", "Lightning: from") in capsys.readouterr().out
    assert path.read_bytes() == before and sorted(path.parent.iterdir()) == listing  # the dry run wrote nothing
    out = tmp_path / "up.ckpt"
    assert main(["upgrade", str(path), "-o", str(out)]) == 0
    assert said in capsys.readouterr().out
    assert main(["upgrade", str(out), "-o", str(tmp_path / "again.ckpt")]) == 0
    assert "already migrated by Lightning" not in capsys.readouterr().out  # said once, by the upgrade that repaired


def test_a_pre_0_10_file_migrated_by_lightning_gets_our_callback_states(tmp_path):
    """No golden is older than 0.10.0, so hand-made: the keys 0.8.2 - 0.9.x saved (their layout as
    in tests/migrations/test_v0_10_0__10_*), through the installed Lightning's ``migrate_checkpoint``
    (which keys ``ModelCheckpoint`` by its class and leaves ``early_stop_callback_state_dict``
    behind) and a real save/load; ours must match our upgrade of the untouched dict."""
    import torch

    utils = importlib.import_module(versions.lightning_module_name() + ".utilities.migration.utils")
    original = {
        "pytorch-lightning_version": "0.9.0",
        "epoch": 3,
        "global_step": 41,
        "state_dict": {"w": torch.ones(2)},
        "checkpoint_callback_best_model_score": torch.tensor(0.5),
        "checkpoint_callback_best_model_path": "epoch=2.ckpt",
        "early_stop_callback_state_dict": {
            "wait_count": 1,
            "stopped_epoch": 0,
            "best_score": torch.tensor(0.5),
            "patience": 3,
        },
        "optimizer_states": [],
        "lr_schedulers": [],
    }
    theirs = copy.deepcopy(original)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        utils.migrate_checkpoint(theirs)
    torch.save(theirs, tmp_path / "theirs.ckpt")
    checkpoint = load_checkpoint(tmp_path / "theirs.ckpt", trust=True)  # Lightning pickled its ModelCheckpoint class
    upgrade(checkpoint)
    record = checkpoint["ckpt_compat"].pop(premigrated.RECORD_KEY)
    assert record["repaired"] == _expected_repairs(original) and record["not_repaired"] == []
    upgrade(original)
    # the one difference: which key the state had in the file (Lightning's class, our 0.10 unit's name)
    assert _diff(checkpoint, original) == [
        "/ckpt_compat/callback_keys/ModelCheckpoint/from: "
        f"'{versions.lightning_module_name()}.callbacks.model_checkpoint.ModelCheckpoint' -> 'ModelCheckpoint'"
    ]


@pytest.mark.parametrize(
    ("name", "resaved"), [("1.2.7/argparse_hparams.ckpt", False), ("1.2.8/argparse_hparams.ckpt", True)]
)
def test_lightning_cannot_resave_argparse_hparams_before_1_2_8(ws, tmp_path, name, resaved):
    """The exception CANNOT_RESAVE, measured with the installed tool: it fails on the last file that
    references ``_gpus_arg_default`` and leaves it truncated (its ``.bak`` keeps the original); 1.2.8's is re-saved."""
    tool = importlib.import_module(versions.lightning_module_name() + ".utilities.upgrade_checkpoint")
    golden = ws.store.get(name)
    path = tmp_path / "file.ckpt"
    shutil.copyfile(ws.fetch(golden), path)
    assert _cannot_resave(golden) is not resaved
    if resaved:
        _run_tool(tool, path)
        assert premigrated.detect(_load(path)) == {"legacy_version": "1.2.8", "by": CURRENT}
        return
    with pytest.raises(AttributeError, match=re.escape(LAMBDA)):
        _run_tool(tool, path)
    assert path.stat().st_size < tmp_path.joinpath("file.bak").stat().st_size == ws.fetch(golden).stat().st_size


@pytest.mark.slow
@pytest.mark.parametrize("namespace", NAMESPACES)
def test_every_golden_older_than_2_0(ws, tmp_path, request, namespace):
    """The measurement behind the README (about 1 min per namespace): every real pre-2.0 golden,
    Lightning-migrated and upgraded by us, equals our upgrade of the original. Fault-tolerant
    1.4/1.5 goldens are left out: Lightning's own migration raises ``KeyError`` on them. So are the
    ``argparse_hparams`` goldens saved before 1.2.8 (CANNOT_RESAVE): each is run through the tool alone
    and must fail with the unpicklable lambda, exactly those (a Lightning that fixes it fails this test)."""
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("opt in with -m slow (every pre-2.0 golden through Lightning's upgrade_checkpoint)")
    tool = pytest.importorskip(namespace + ".utilities.upgrade_checkpoint")
    older = [
        g
        for g in ws.store.goldens
        if versions.parse(g.saved_version) < versions.parse("2.0.0") and g.scenario != "fault_tolerant"
    ]
    goldens, cannot = [g for g in older if not _cannot_resave(g)], [g for g in older if _cannot_resave(g)]
    for golden in cannot:
        (tmp_path / "cannot" / golden.name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ws.fetch(golden), tmp_path / "cannot" / golden.name)
        with pytest.raises(AttributeError, match=re.escape(LAMBDA)):
            _run_tool(tool, tmp_path / "cannot" / golden.name)
    for golden in goldens:
        (tmp_path / "all" / golden.name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ws.fetch(golden), tmp_path / "all" / golden.name)
    _run_tool(tool, tmp_path / "all")
    differences = {}
    for golden in goldens:
        checkpoint = _load(tmp_path / "all" / golden.name)
        upgrade(checkpoint)
        record = checkpoint["ckpt_compat"].pop(premigrated.RECORD_KEY)
        if record["repaired"] != _expected_repairs(ws.load(golden)) or record["not_repaired"]:
            differences[golden.id] = record
        diff = _same_as_ours(checkpoint, ws.upgraded(golden)[0], namespace) + _diff(
            checkpoint["state_dict"], ws.upgraded(golden)[0]["state_dict"]
        )
        if diff:
            differences[golden.id] = diff
    assert len(goldens) > 400 and differences == {}
    assert len(cannot) == 27  # 0.10.0, 1.0.0 - 1.0.8, 1.1.0 - 1.1.8, 1.2.0 - 1.2.7
