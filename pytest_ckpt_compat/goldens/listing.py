"""``ckpt-compat golden list``: the goldens present, or the releases still missing a golden."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from packaging.version import InvalidVersion, Version

from .environments import GoldenBuildError, folder_name, release_dates, release_sort_key
from .registry import read_registry


def list_goldens(
    golden_dir: Path, missing: str | None = None, *, package: str = "pytorch-lightning", log: Callable = print
) -> list[dict]:
    """Present goldens (release, scenarios, bytes), or with ``missing="A..B"`` the releases to add."""
    golden_dir = Path(golden_dir)
    registry = read_registry(golden_dir, missing_ok=True)
    present: dict[str, dict] = {}
    for name in registry:
        folder, _, file = name.partition("/")
        row = present.setdefault(folder, {"release": folder, "scenarios": [], "bytes": 0})
        row["scenarios"].append(file[: -len(".ckpt")] if file.endswith(".ckpt") else file)
        path = golden_dir / name
        row["bytes"] += path.stat().st_size if path.exists() else 0
    for folder, row in present.items():
        meta_path = golden_dir / folder / "meta.json"
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        if not row["bytes"]:  # an installed wheel ships meta.json, not the files: their recorded sizes
            row["bytes"] = sum(s.get("size", 0) for s in meta.get("scenarios", {}).values() if isinstance(s, dict))
        row.update(package=meta.get("package", "?"), python=meta.get("python"), torch=meta.get("torch"))
    if missing is None:
        return sorted(
            present.values(), key=lambda r: (r.get("package", ""), release_sort_key(r["release"].split("-")[-1]))
        )
    lo, sep, hi = missing.partition("..")
    if not sep:
        raise GoldenBuildError(f"--missing expects A..B, got {missing!r}")
    dates, _ = release_dates(package, golden_dir, log=log)
    lo_v = Version(lo) if lo else Version("0")
    hi_v = Version(hi) if hi else Version("9999")
    rows = []
    for release, uploaded in dates.items():
        try:
            v = Version(release)
        except InvalidVersion:
            continue
        if v.is_prerelease or v.is_devrelease or v.is_postrelease or not (lo_v <= v <= hi_v):
            continue
        if folder_name(release, package) not in present:
            rows.append({"release": release, "package": package, "uploaded": uploaded})
    return sorted(rows, key=lambda r: Version(r["release"]))


def coverage_markdown(golden_dir: Path) -> str:
    """The README's coverage block, counted from ``registry.txt``: folders, files, sizes, goldens per scenario.

    Why generated: the counts change with every ``golden add``; a hand-written figure goes stale
    (the README said 124 releases for 125 folders). ``tests/goldens/test_coverage.py`` checks that
    the README holds exactly this text.
    """
    rows = list_goldens(golden_dir)
    folders = [r["release"] for r in rows]
    unified = [f for f in folders if f.startswith("lightning-")]
    classic = [f for f in folders if f not in unified]
    by_scenario: dict[str, list[str]] = {}
    for row in rows:
        for scenario in row["scenarios"]:
            by_scenario.setdefault(scenario, []).append(row["release"])
    checkpoints = sum(r["bytes"] for r in rows)
    meta = sum((Path(golden_dir) / f / "meta.json").stat().st_size for f in folders if (Path(golden_dir) / f).is_dir())
    lines = [
        f"{sum(len(r['scenarios']) for r in rows)} goldens in {len(folders)} folders: {len(classic)} "
        f"`pytorch-lightning` releases ({_span(classic)}) and {len(unified)} saved with the unified "
        f"`lightning` package ({_span(unified)}); {checkpoints / 1e6:.1f} MB of checkpoints "
        f"({(checkpoints + meta) / 1e6:.1f} MB with `meta.json`).",
        "",
        "| scenario | goldens | `pytorch-lightning` releases | `lightning` folders |",
        "|---|---:|---|---:|",
    ]
    for scenario, where in sorted(by_scenario.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        mine = [f for f in where if f in classic]
        releases = "all" if len(mine) == len(classic) else f"{len(mine)}: {_span(mine)}"
        lines.append(f"| `{scenario}` | {len(where)} | {releases} | {len(where) - len(mine)} |")
    return "\n".join(lines) + "\n"


def _span(folders: list[str]) -> str:
    """``first – last`` by release version (the unified package's folders by their release too)."""
    if not folders:
        return "none"
    ordered = sorted(folders, key=lambda f: (release_sort_key(f.split("-")[-1]), f))
    return ordered[0] if len(ordered) == 1 else f"{ordered[0]} – {ordered[-1]}"
