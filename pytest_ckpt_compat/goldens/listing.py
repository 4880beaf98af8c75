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
