"""Wheel build hook: ship the catalogue and the golden metadata as package data.

The catalogue stays a folder of documented files (Alembic's "script directory"): in the wheel it
lives at ``pytest_ckpt_compat/_data/migrations`` and is loaded by path, so installing never creates
a top-level ``migrations`` import. Golden checkpoints are fetched (pooch, sha256-checked), never
installed: the wheel carries the registry, each release's meta.json and the recipe. Editable
installs read both folders from the checkout instead, so the hook adds nothing there.
"""

from __future__ import annotations

from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class CustomBuildHook(BuildHookInterface):
    def initialize(self, version: str, build_data: dict) -> None:
        if version == "editable":
            return
        root = Path(self.root)
        data = "pytest_ckpt_compat/_data"
        force = build_data.setdefault("force_include", {})
        for unit in sorted((root / "migrations").glob("*.py")):
            force[str(unit)] = f"{data}/migrations/{unit.name}"
        golden = root / "golden"
        shipped = [
            golden / "registry.txt",
            *sorted(golden.glob("*/meta.json")),
            *sorted((golden / "recipes").glob("*.py")),
        ]
        for path in shipped:
            force[str(path)] = f"{data}/golden/{path.relative_to(golden).as_posix()}"
