"""Schema drift: a checkpoint saved now must have the structure of the newest golden after upgrade.

Why: a Lightning release that adds or moves keys without a migration unit is caught here, on the
key paths and value types, before a user's old file meets it (``--ckpt-compat-check``).
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core import ledger, versions
from ..goldens.store import Golden, GoldenStore
from .compare import CheckFailed

if TYPE_CHECKING:
    from .workspace import Workspace

_IGNORED_TOP = {ledger.KEY, versions.LEGACY_VERSION_KEY}


def structure(obj: Any, prefix: str = "") -> dict[str, str]:
    """``{key path: type name}``; list items share one ``[]`` path, path-like keys become ``<path>``."""
    import torch

    out: dict[str, str] = {}
    if isinstance(obj, dict):
        out[prefix or "."] = "dict"
        for key, value in obj.items():
            if not prefix and key in _IGNORED_TOP:
                continue
            text = _key_text(key)
            out.update(structure(value, f"{prefix}.{text}" if prefix else text))
    elif isinstance(obj, (list, tuple)):
        out[prefix] = "list"
        for value in obj:
            out.update(structure(value, prefix + "[]"))
    else:
        out[prefix] = "Tensor" if isinstance(obj, torch.Tensor) else type(obj).__name__
    return out


def _key_text(key: Any) -> str:
    text = key if isinstance(key, str) else getattr(key, "__qualname__", None) or repr(key)
    if isinstance(text, str) and ("/" in text or "\\" in text or text.endswith(".ckpt")):
        return "<path>"
    return str(text)


def structure_diff(golden_struct: dict[str, str], now_struct: dict[str, str]) -> list[str]:
    """Key-level differences; ``NoneType`` on one side matches any type (unset optional state)."""
    lines = []
    for path in sorted(set(golden_struct) | set(now_struct)):
        a, b = golden_struct.get(path), now_struct.get(path)
        if a == b:
            continue
        if a is None:
            lines.append(f"+ {path} ({b})  only in the checkpoint saved now")
        elif b is None:
            lines.append(f"- {path} ({a})  only in the upgraded golden")
        elif "NoneType" not in (a, b):
            lines.append(f"~ {path}: {a} in the upgraded golden, {b} now")
    return lines


def newest_golden(store: GoldenStore, scenario: str, installed: str | None = None) -> Golden | None:
    """The newest golden of ``scenario`` of a release not newer than the installed one.

    ``installed``: the installed release of the suite (default: Lightning's, compared with each
    golden's saving Lightning); a team's suite compares its own release folders with its package.
    """
    if installed is None:
        limit = versions.parse(versions.installed_lightning_version())
        found = [g for g in store.goldens if g.scenario == scenario and versions.parse(g.saved_version) <= limit]
    else:
        limit = versions.parse(installed)
        found = [g for g in store.goldens if g.scenario == scenario and versions.parse(g.release) <= limit]
    return found[-1] if found else None


def check_schema_drift(ws: Workspace, scenario: str, tmp_path: Path) -> None:
    """A checkpoint saved now with the recipe must have the structure of the upgraded newest golden."""
    from ..files.loading import load_checkpoint

    assert ws.suite is not None
    team = ws.suite.is_team
    installed = ws.suite.installed_version() if team else None
    golden = newest_golden(ws.store, scenario, installed)
    if golden is None:
        raise CheckFailed(f"no golden of scenario {scenario!r} at or below the installed release to compare with")
    with warnings.catch_warnings(), _quiet_lightning():
        warnings.simplefilter("ignore")
        _save_now(ws, scenario, tmp_path)
    now = load_checkpoint(tmp_path / f"{scenario}.ckpt", trust=True)
    upgraded, _ = ws.upgraded(golden)
    diff = structure_diff(structure(upgraded), structure(now))
    if diff:
        who = f"{ws.suite.name} {installed}" if team else f"Lightning {versions.installed_lightning_version()}"
        raise CheckFailed(
            f"schema drift: a {scenario} checkpoint saved now by {who} "
            f"differs from golden {golden.name} (saved by {golden.release if team else golden.saved_version}) "
            "after upgrade:\n  "
            + "\n  ".join(diff[:80])
            + ("\n  ..." if len(diff) > 80 else "")
            + "\n"
            + (team_drift_hint(ws, golden.release, str(installed)) if team else drift_hint(golden.saved_version))
        )


def _save_now(ws: Workspace, scenario: str, tmp_path: Path) -> None:
    """Save ``tmp_path/<scenario>.ckpt`` with the installed code: the built-in recipe's runner or the recorder."""
    view = ws.view
    if view.team:
        from ..goldens import recorder

        recorder.run_scenario(view.contract, scenario, str(tmp_path / "build"), str(tmp_path))
    else:
        recipe = view.truth
        recipe.run_scenario(scenario, recipe.CLASSES, str(tmp_path / "build"), str(tmp_path), "cpu")


def drift_hint(saved_version: str) -> str:
    """What to do about a drift: a missing unit only when releases lie between the golden and the installed one."""
    from ..core.catalogue import lightning_catalogue

    installed = versions.installed_lightning_version()
    if versions.parse(saved_version) >= versions.parse(installed):
        return (
            f"The golden was saved by the installed release {installed} itself, so no migration can be missing: "
            "what saves checkpoints changed since the golden was recorded (a patched Lightning, a dependency, "
            f"or the recipe). If the new structure is intended, re-record with `ckpt-compat golden add {installed}`."
        )
    units = [m for m in lightning_catalogue().migrations if versions.parse(saved_version) < m.version]
    known = ", ".join(m.id for m in units) or "none"
    return (
        f"Likely missing migration: a unit with {saved_version} < VERSION <= {installed} that produces "
        f"these keys (units in that range now: {known}); or add a golden for {installed}."
    )


def team_drift_hint(ws: Workspace, release: str, installed: str) -> str:
    """The team's version of :func:`drift_hint`: its own catalogue's units between the golden and now."""
    from .suites import team_catalogue

    name = ws.suite.name if ws.suite else "the team"
    if versions.parse(release) >= versions.parse(installed):
        return (
            f"The golden is of the installed {name} release {installed} itself: its code now saves a different "
            f"structure than when the golden was recorded. If that is intended, record the release again with "
            f"`ckpt-compat golden record --recipe {ws.suite.recipe_spec if ws.suite else '...'} --force`, "
            "or bump the version and add a unit for the change."
        )
    catalogue = team_catalogue(ws.view.contract)
    units = [] if catalogue is None else [m for m in catalogue.migrations if versions.parse(release) < m.version]
    known = ", ".join(m.id for m in units) or "none"
    return (
        f"Likely missing migration: a unit of the {name} catalogue with {release} < VERSION <= {installed} "
        f"that produces these keys (units in that range now: {known}); or record a golden of {installed}."
    )


@contextlib.contextmanager
def _quiet_lightning():
    import logging

    loggers = [logging.getLogger(n) for n in (*versions.LIGHTNING_MODULES, "lightning.fabric", "lightning_fabric")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
