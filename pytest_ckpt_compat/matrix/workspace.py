"""The per-process workspace of the matrix: fetched, loaded and upgraded goldens, and the recipe.

Why a room: every check of a golden needs the same fetched file, the same safe load and the same
upgraded copy; doing that once per process (one per xdist worker) keeps the matrix's cost at one
upgrade per golden. The recipe is imported under the module name its classes were pickled with.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from ..goldens.store import Golden, GoldenStore

RECIPE_MODULE = "ckpt_compat_recipe"  # the module name the recipe's classes were pickled under


def recipe_path(store: GoldenStore) -> Path:
    """The recipe that made the goldens, next to the registry (repository or wheel)."""
    from ..goldens.store import packaged_golden_dir, repository_golden_dir

    for base in (store.registry_dir, repository_golden_dir(), packaged_golden_dir()):
        if base is not None and (Path(base) / "recipes" / "recipe.py").is_file():
            return Path(base) / "recipes" / "recipe.py"
    raise FileNotFoundError(f"no recipes/recipe.py next to {store.registry_dir}: cannot rebuild the golden's classes")


@cache
def load_recipe(path: str):
    """Import the recipe by path under the module name its classes were pickled with."""
    import torch

    from ..lightning import trainer_module

    existing = sys.modules.get(RECIPE_MODULE)
    if existing is not None and getattr(existing, "__file__", None) == str(path) and getattr(existing, "CLASSES", None):
        return existing
    spec = importlib.util.spec_from_file_location(RECIPE_MODULE, path)
    assert spec is not None and spec.loader is not None, path  # a .py file always has a source loader
    module: Any = importlib.util.module_from_spec(spec)
    sys.modules[RECIPE_MODULE] = module
    spec.loader.exec_module(module)
    module.pl, module.torch = trainer_module(), torch
    module.CLASSES = module._build_classes()
    return module


@dataclass
class Workspace:
    """Per-process cache of fetched, loaded and upgraded goldens (one per pytest session/worker)."""

    store: GoldenStore
    tmpdir: Path
    _upgraded: dict = field(default_factory=dict)
    trusted: dict = field(default_factory=dict)  # golden name -> its verified private copy

    @property
    def recipe(self):
        return load_recipe(str(recipe_path(self.store)))

    def fetch(self, golden: Golden) -> Path:
        return self.store.fetch(golden)

    def load(self, golden: Golden) -> dict:
        """A fresh dict of the golden file: safe load, else a trusted load of bytes just hashed.

        Trust runs pickled code, so it never reads the (possibly shared) cache: it reads a private
        copy whose bytes matched the registry's sha256 when they were copied (:meth:`trusted_file`).
        """
        from ..core.errors import UnsafeCheckpoint
        from ..files.loading import load_checkpoint

        if golden.name not in self.trusted:
            try:
                return load_checkpoint(self.fetch(golden))
            except UnsafeCheckpoint:
                pass
        _ = self.recipe  # the pickled user classes live in the recipe module
        return load_checkpoint(self.trusted_file(golden), trust=True)

    def trusted_file(self, golden: Golden) -> Path:
        """The golden as a private file verified against the registry now: the only path loaded with trust."""
        if golden.name not in self.trusted:
            self.trusted[golden.name] = self.store.verified_copy(golden, self.tmpdir / "trusted")
        return self.trusted[golden.name]

    def upgraded(self, golden: Golden) -> tuple[dict, Path]:
        """The golden upgraded by our catalogue alone, and the file it was written to."""
        if golden.name not in self._upgraded:
            from ..core.engine import upgrade
            from ..files.writing import save_checkpoint
            from ..lightning import lightning_migration_disabled

            checkpoint = self.load(golden)
            source = self.trusted[golden.name] if golden.name in self.trusted else self.fetch(golden)
            with lightning_migration_disabled():
                upgrade(checkpoint)
            dest = self.tmpdir / "upgraded" / golden.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            save_checkpoint(checkpoint, dest, source=source)
            self._upgraded[golden.name] = (checkpoint, dest)
        return self._upgraded[golden.name]
