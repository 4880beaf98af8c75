"""The golden matrix: what "this old checkpoint still works" means, check by check.

Lightning's own legacy tests only assert "loads and runs" (Lightning-AI/pytorch-lightning#5491);
here every check compares against the ``truth`` the recipe read from the live objects at saving
time, exactly (no tolerances): counters, optimizer moments and steps, schedulers, callback states.

Checks, in the order a user meets them: ``fetch`` → ``upgrade`` → ``load`` → ``resume`` →
``weights_only`` → ``plain_resume`` (the upgraded file resumed by plain Lightning: no
``CheckpointUpgrade``, Lightning's own migration left on and proven a no-op, the same exact state
compared as ``resume``) → ``evaluate`` (``validate``/``test``/``predict(ckpt_path=...)`` start
with the file's weights: :mod:`.evaluate`). Each is runnable alone; shared work (fetch, load, upgrade, write) is
cached per process in a :class:`~.workspace.Workspace`; the Trainer runs through :mod:`.harness`.
"""

from __future__ import annotations

import importlib
import math
import re
import warnings
from pathlib import Path
from typing import Any

from ..core import ledger, versions
from ..goldens.store import Golden
from . import harness, refusals
from .compare import CheckFailed, Mismatches
from .evaluate import check_evaluate
from .workspace import Workspace

CHECKS = ("fetch", "upgrade", "load", "resume", "weights_only", "plain_resume", "evaluate")


# ------------------------------------------------------------------------------------ skipping
def skip_reason(golden: Golden, check: str = "fetch") -> str | None:
    """Why a cell cannot run here (never for ``fetch``: a golden is always fetchable)."""
    if check == "fetch":
        return None
    installed = versions.parse(versions.installed_lightning_version())
    saved = versions.parse(golden.saved_version)
    if saved > installed:
        return f"golden {golden.id} was saved by Lightning {saved}, newer than the installed {installed}"
    if golden.requires == "gpu" and check in ("load", "resume", "plain_resume", "evaluate"):
        import torch

        if not torch.cuda.is_available():
            return f"golden {golden.id} requires a GPU (requires: gpu) and none is available"
    return None


def run(ws: Workspace, golden: Golden, check: str, tmp_path: Path) -> None:
    """Entry point used by the plugin's test: one matrix cell."""
    __tracebackhide__ = True
    {
        "fetch": check_fetch,
        "upgrade": check_upgrade,
        "load": check_load,
        "weights_only": check_weights_only,
        "plain_resume": lambda ws, g: check_plain_resume(ws, g, tmp_path),
        "evaluate": lambda ws, g: check_evaluate(ws, g, tmp_path),
    }.get(check, lambda ws, g: check_resume(ws, g, tmp_path))(ws, golden)


# ------------------------------------------------------------------------------------ checks
def check_fetch(ws: Workspace, golden: Golden) -> None:
    """Fetched from the configured source and identical (sha256) to what the registry pins."""
    path = ws.fetch(golden)
    if not path.is_file() or path.stat().st_size == 0:
        raise CheckFailed(f"{golden.name}: fetched file {path} is missing or empty")


def check_upgrade(ws: Workspace, golden: Golden) -> None:
    """Upgraded by our catalogue alone: ledger written, version stamped, origin kept."""
    checkpoint, _ = ws.upgraded(golden)
    installed = versions.installed_lightning_version()
    m = Mismatches(f"{golden.id} upgrade")
    current = versions.parse(golden.saved_version) == versions.parse(installed)
    if current and "lightning" not in ledger.applied_catalogues(checkpoint):
        pass  # nothing of Lightning's to apply to a golden of the installed Lightning (a team's units may have run)
    elif "lightning" not in ledger.applied_catalogues(checkpoint):
        m.add(f"no ledger: checkpoint[{ledger.KEY!r}] = {checkpoint.get(ledger.KEY)!r}")
    m.eq(f"checkpoint[{versions.VERSION_KEY!r}]", checkpoint.get(versions.VERSION_KEY), installed)
    if versions.parse(golden.saved_version) != versions.parse(installed):
        m.eq(
            f"checkpoint[{versions.LEGACY_VERSION_KEY!r}]",
            checkpoint.get(versions.LEGACY_VERSION_KEY),
            golden.saved_version,
        )
    elif versions.LEGACY_VERSION_KEY in checkpoint:
        m.add(f"{versions.LEGACY_VERSION_KEY!r} written although the golden is already at {installed}")
    if ws.suite is not None and ws.suite.is_team:
        _check_team_upgrade(m, ws, golden, checkpoint)
    m.raise_if_any()


def _check_team_upgrade(m: Mismatches, ws: Workspace, golden: Golden, checkpoint: dict) -> None:
    """A team's golden of an older release: its catalogue ran and stamped the installed team version."""
    from .suites import team_catalogue

    assert ws.suite is not None
    catalogue = team_catalogue(ws.view.contract)
    installed = ws.suite.installed_version()
    if catalogue is None or versions.parse(golden.release) >= versions.parse(installed):
        return
    if catalogue.name not in ledger.applied_catalogues(checkpoint):
        original = ws.load(golden)
        if not catalogue.applies_to(original):
            m.add(
                f"the {ws.suite.name} {golden.release} golden carries no {catalogue.version_key!r} key and the "
                f"{catalogue.name!r} catalogue's recognizes() does not accept it, so none of its units ran: give the "
                "catalogue a recognizes(checkpoint) predicate for files saved before the key existed"
            )
        else:
            m.add(f"the {catalogue.name!r} catalogue did not upgrade this {ws.suite.name} {golden.release} golden")
    m.eq(f"checkpoint[{catalogue.version_key!r}]", checkpoint.get(catalogue.version_key), catalogue.default_target())


# ``load_from_checkpoint(..., lr=EXPLICIT_LR)``: an explicit keyword argument wins over the saved value.
EXPLICIT_LR = 0.125


def check_load(ws: Workspace, golden: Golden) -> None:
    """``load_from_checkpoint`` through our integration: hparams and weights exactly as saved.

    The built-in module is loaded with an explicit ``lr``, as users override a saved hyperparameter:
    it must win, everything else stays as saved, and the module's own ``on_load_checkpoint`` runs once.
    """
    import torch

    from ..lightning import lightning_migration_disabled, load_from_checkpoint

    view, truth = ws.view, golden.truth
    m = Mismatches(f"{golden.id} load_from_checkpoint")
    original = ws.load(golden)  # also learns whether the golden needs trust
    trust = golden.name in ws.trusted
    path = ws.trusted_file(golden) if trust else ws.fetch(golden)
    upgraded = ws.upgraded(golden)[0] if view.team else None
    explicit: dict[str, Any] = {} if view.team else {"lr": EXPLICIT_LR}  # a team's hyperparameter names are its own
    with lightning_migration_disabled():
        model = load_from_checkpoint(view.module_class(golden, upgraded), path, trust=trust, **explicit)
    if upgraded is not None:  # a team's catalogue renames hyperparameters: its users' load gets the upgraded ones
        m.eq("hparams", view.jsonable(dict(model.hparams)), view.jsonable(view.hparams(golden, upgraded)))
    else:
        live = view.jsonable(dict(model.hparams))
        expected = dict(harness.data_hparams(truth["hparams"]), **explicit)
        m.eq("hparams (lr passed explicitly)", live, harness.rebuilt_hparams(expected, live))
    if hasattr(model, "checkpoint_loads"):  # the built-in module counts its own hook's calls
        m.eq("module on_load_checkpoint calls", model.checkpoint_loads, 1)
    saved = (upgraded if upgraded is not None else original).get("state_dict", {})
    _check_weights_truth(m, view, model, original.get("state_dict", {}), truth)
    live = model.state_dict()
    if list(live) != list(saved):
        m.add(f"state_dict keys differ: loaded {sorted(set(live) ^ set(saved))} are not in both the model and the file")
    for key, tensor in saved.items():
        if key in live and not torch.equal(live[key], tensor):
            m.add(f"state_dict[{key!r}] differs from the golden file")
    if truth.get("datamodule_hparams") is not None:
        with lightning_migration_disabled():
            dm = load_from_checkpoint(type(view.make_datamodule(golden.scenario)), path, trust=trust)
        live = view.jsonable(dict(dm.hparams))
        m.eq("datamodule hparams", live, harness.rebuilt_hparams(truth["datamodule_hparams"], live))
    m.raise_if_any()


def _check_weights_truth(m: Mismatches, view, model, golden_weights: dict, truth: dict) -> None:
    """The loaded weights are the ones recorded live. A team's unit may add or drop tensors (a new
    buffer): then the recorded digest cannot match, and the file's own tensors are what is compared."""
    if view.team and len(model.state_dict()) != len(golden_weights):
        return
    sha, total = view.weights(model)
    expected = harness.file_weights(truth)
    m.eq("weights_sha256", sha, expected[0])
    m.eq("weights_sum", total, expected[1])


def check_weights_only(ws: Workspace, golden: Golden) -> None:
    """The upgraded file needs no allowlist: plain ``torch.load(weights_only=True)`` reads it."""
    import torch

    _, path = ws.upgraded(golden)
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        _skip_if_the_team_saves_the_same(ws, golden, exc)
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        hint = ""
        if found and golden.suite:
            hint = (
                f": the file pickles {found.group(1)}; list it in the recipe's safe_globals (what your users "
                "register with torch.serialization.add_safe_globals), or save it as plain data"
            )
        elif found:
            hint = f": the file pickles {found.group(1)}"
        raise CheckFailed(
            f"{golden.id}: upgraded file does not load with weights_only=True: {type(exc).__name__}"
            + (hint or f": {str(exc).splitlines()[0]}")
        ) from None
    installed = versions.installed_lightning_version()
    if loaded.get(versions.VERSION_KEY) != installed:
        raise CheckFailed(
            f"{golden.id}: weights_only load gave version {loaded.get(versions.VERSION_KEY)!r}, expected {installed!r}"
        )


def _skip_if_the_team_saves_the_same(ws: Workspace, golden: Golden, exc: Exception) -> None:
    """A team's files may pickle objects that ``weights_only=True`` cannot rebuild even with every class
    in the recipe's ``safe_globals`` (chemprop keeps submodule hparams in an ``AttributeDict``, which
    that unpickler does not fill). If the installed release's own golden of the scenario fails the
    same way, no upgrade can change it: skipped, saying why. A class still missing from
    ``safe_globals`` is the team's to list, so that keeps failing with the hint."""
    import pytest
    import torch

    if ws.suite is None or not ws.suite.is_team or _UNSUPPORTED in str(exc):
        return
    installed = ws.suite.installed_version()
    own = next((g for g in ws.store.goldens if g.release == installed and g.scenario == golden.scenario), None)
    if own is None:
        return
    try:
        torch.load(ws.fetch(own), map_location="cpu", weights_only=True)
    except Exception as own_exc:
        if _UNSUPPORTED not in str(own_exc):
            pytest.skip(
                f"{ws.suite.name} {installed}'s own {own.name} does not load with weights_only=True either, "
                f"with the recipe's safe_globals allowed: {_unpickler_reason(own_exc)}"
            )


_UNSUPPORTED = "Unsupported global"


def _unpickler_reason(exc: Exception) -> str:
    """The line of torch's message that says what its weights-only unpickler could not do."""
    text = str(exc).split("WeightsUnpickler error:", 1)[-1]
    return next((line.strip() for line in text.splitlines() if line.strip()), type(exc).__name__)


def check_resume(
    ws: Workspace, golden: Golden, tmp_path: Path, *, plain: Path | None = None, integration: Path | None = None
) -> None:
    """``fit(ckpt_path=upgraded)`` restores exactly what was saved, then trains one more epoch.

    ``plain``: a file written by ``upgrade`` + ``save_checkpoint``, resumed with plain Lightning
    (no ``CheckpointUpgrade``, no re-keying of callback states, Lightning's own migration on).
    ``integration``: a file as found (e.g. written by Lightning's own ``upgrade_checkpoint``),
    resumed through ``CheckpointUpgrade``, which upgrades it on load.

    Where Lightning must refuse (a weights-only file; on ``end_of_fit`` also a copy missing one
    weight or the scheduler state), the check passes only if ``fit`` raises.
    """
    __tracebackhide__ = True
    view, truth = ws.view, golden.truth
    pl = view.pl
    upgraded, path = ws.upgraded(golden)
    golden_file = ws.load(golden)
    expected = harness.expected_counters(golden, upgraded, golden_file)
    if plain is not None:
        from ..files.loading import load_checkpoint

        upgraded, path = load_checkpoint(plain, trust=golden.name in ws.trusted), plain
        applied = _lightning_migrations_applied(pl, upgraded)
        if applied:
            raise CheckFailed(f"{golden.id}: Lightning's own migration still changes the upgraded file: {applied}")
    if integration is not None:
        from ..core.engine import upgrade
        from ..files.loading import load_checkpoint

        upgraded, path = upgrade(load_checkpoint(integration)), integration
    if golden.scenario in refusals.REFUSED_SCENARIOS:
        refusals.check_refused(ws, golden, path, tmp_path, refusals.REFUSED_SCENARIOS[golden.scenario])
        return
    probe = harness.make_probe(pl)(golden, truth, expected, golden_file, upgraded, view, tmp_path)
    probe.exact_keys = plain is not None
    trainer, model, datamodule = harness.fit(
        ws, golden, path, tmp_path, upgraded, max_epochs=expected["epoch"] + 1, extra=[probe], plain=plain is not None
    )
    m = Mismatches(f"{golden.id} after the extra epoch")
    _check_datamodule(m, datamodule, truth, upgraded, view)
    if not probe.restored:
        m.add("the probe never ran: training did not start")
    m.eq("batches trained after resuming", len(probe.losses), expected["batches"])
    bad = [i for i, loss in enumerate(probe.losses) if loss is None or not math.isfinite(loss)]
    if bad:
        m.add(f"non-finite or missing train_loss at batches {bad}: {probe.losses}")
    steps = sum(model.step_counts) if hasattr(model, "step_counts") else probe.steps  # the built-in module's own count
    m.eq("final global_step", int(trainer.global_step), expected["global_step"] + steps)
    if hasattr(model, "checkpoint_loads"):  # the built-in module counts its own hook's calls
        m.eq("module on_load_checkpoint calls", model.checkpoint_loads, 1)
    _check_next_batch(m, model, truth, upgraded)
    m.raise_if_any()
    if golden.scenario in refusals.STRICT_PROBE_SCENARIOS and plain is None:
        refusals.check_refuses_broken_copies(ws, golden, upgraded, path, tmp_path)


def _check_next_batch(m: Mismatches, model, truth: dict, upgraded: dict) -> None:
    """A mid-epoch save of a stateful dataloader (``stateful_loader``): the file holds the loader's state as
    it was live, and the resumed epoch trains on the batch after the last one trained, not its first batch."""
    recorded = truth.get("stateful_loader")
    if not recorded:
        return
    saved = ((_fit_loop_state(upgraded)).get("state_dict") or {}).get("combined_loader")
    m.eq("the fit loop's saved dataloader state (combined_loader)", saved, recorded["loader_states"])
    seen = [indices for epoch, indices in getattr(model, "batch_indices", []) if epoch == recorded["epoch"]]
    m.eq(
        "sample indices of the first batch trained after resuming (the next batch, not the epoch's first)",
        seen[0] if seen else None,
        recorded["next_batch"],
    )


def _fit_loop_state(checkpoint: dict) -> dict:
    return (checkpoint.get("loops") or {}).get("fit_loop") or {}


def check_plain_resume(ws: Workspace, golden: Golden, tmp_path: Path) -> None:
    """The upgraded file, written as a user gets it, resumes under plain Lightning with the same state.

    Written by ``upgrade`` + ``save_checkpoint`` (what ``ckpt-compat upgrade -o`` runs): the
    workspace's upgraded file, written so once per golden and read back here. When the upgrade
    reports callback states it could not key (0.10/1.0 files record no monitor), the recipe's
    callbacks are stated, as the report tells a user to (``--callback``/``callbacks=``), and that
    file is written here.
    """
    __tracebackhide__ = True
    from ..core.callback_keys import unresolved
    from ..core.engine import upgrade
    from ..files.writing import save_checkpoint

    if not unresolved(ws.upgraded(golden)[0]):  # nothing to state: the workspace wrote that very file already
        check_resume(ws, golden, tmp_path, plain=ws.upgraded(golden)[1])
        return
    checkpoint = ws.load(golden)
    stated = ws.view.make_callbacks(golden.scenario, str(tmp_path))
    upgrade(checkpoint, callbacks=stated)
    if unresolved(checkpoint):
        raise CheckFailed(
            f"{golden.id}: callback states not keyed even with the configuration stated: {unresolved(checkpoint)}"
        )
    dest = tmp_path / "plain" / Path(golden.name).name
    dest.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(checkpoint, dest, source=ws.fetch(golden))
    check_resume(ws, golden, tmp_path, plain=dest)


def _lightning_migrations_applied(pl, checkpoint: dict) -> dict:
    """Lightning's own ``migrate_checkpoint`` on a deep copy of the loaded file: what it would apply
    (a copy, not a second read of the file: the same bytes, without a second opcode scan)."""
    import copy

    utils = importlib.import_module(pl.__name__ + ".utilities.migration.utils")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return utils.migrate_checkpoint(copy.deepcopy(checkpoint))[1]


def _check_datamodule(m: Mismatches, datamodule, truth: dict, upgraded: dict, view) -> None:
    """The datamodule a resume rebuilds has the hparams that were saved (and recorded live)."""
    if truth.get("datamodule_hparams") is None or not hasattr(datamodule, "hparams"):
        return
    live = view.jsonable(dict(datamodule.hparams))
    m.eq("datamodule hparams", live, harness.rebuilt_hparams(truth["datamodule_hparams"], live))
    saved = upgraded.get("datamodule_hyper_parameters")
    if saved is not None:
        m.eq("saved datamodule_hyper_parameters", view.jsonable(dict(saved)), truth["datamodule_hparams"])
