"""The per-process workspace of the matrix: fetched, loaded and upgraded goldens, and the recipe.

Why a room: every check of a golden needs the same fetched file, the same safe load and the same
upgraded copy; doing that once per process (one per xdist worker) keeps the matrix's cost at one
upgrade per golden. The recipe is imported under the module name its classes were pickled with.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..goldens.store import Golden, GoldenStore
from .suites import RECIPE_MODULE, RecipeView, Suite, load_recipe, recipe_path

__all__ = ["RECIPE_MODULE", "Workspace", "load_recipe", "recipe_path"]


@dataclass
class Workspace:
    """Per-process cache of fetched, loaded and upgraded goldens (one per pytest session/worker)."""

    store: GoldenStore
    tmpdir: Path
    suite: Suite | None = None  # None: the built-in suite of ``store``
    _upgraded: dict = field(default_factory=dict)
    _loaded: dict = field(default_factory=dict)  # (name, trusted) -> the dict its first read gave (never handed out)
    trusted: dict = field(default_factory=dict)  # golden name -> its verified private copy

    def __post_init__(self) -> None:
        if self.suite is None:
            self.suite = Suite(self.store)

    @property
    def view(self) -> RecipeView:
        """The suite's recipe as the checks use it (contract + truth readers)."""
        assert self.suite is not None
        return self.suite.recipe

    @property
    def recipe(self):
        """The built-in recipe module (its classes are pickled in the goldens), or a team's recipe object."""
        view = self.view
        return view.truth if not view.team else view.contract

    def fetch(self, golden: Golden) -> Path:
        return self.store.fetch(golden)

    def load(self, golden: Golden) -> dict:
        """A fresh dict of the golden file: safe load, else a trusted load of bytes just hashed.

        The file is read once per workspace; every call returns a deep copy (tensors included), so a
        caller may change it freely. A golden's checks read it about five times: the safe loader's
        opcode scan and unpickling cost 50 - 100 ms a read, a copy of these small files about 1 ms.

        Trust runs pickled code, so it never reads the (possibly shared) cache: it reads a private
        copy whose bytes matched the registry's sha256 when they were copied (:meth:`trusted_file`).
        A safe load that left redirected stand-ins (a team's renamed metric class, vouched for by its
        catalogue) counts as refused: the upgraded file must be written and the module rebuilt from it.
        """
        import copy

        key = (golden.name, golden.name in self.trusted)  # a golden trusted since is read again, with trust
        if key not in self._loaded:
            checkpoint = self._read(golden)  # may make the golden trusted (a safe load refused)
            self._loaded[(golden.name, golden.name in self.trusted)] = checkpoint
            return copy.deepcopy(checkpoint)
        return copy.deepcopy(self._loaded[key])

    def _read(self, golden: Golden) -> dict:
        from ..core.errors import UnsafeCheckpoint
        from ..files.loading import load_checkpoint
        from ..files.redirecting import holds_stand_ins

        if self.suite is not None and self.suite.is_team:
            _ = self.view  # registers the team's catalogue: its redirects let the safe loader read old files
        if golden.name not in self.trusted:
            try:
                checkpoint = load_checkpoint(self.fetch(golden))
            except UnsafeCheckpoint:
                pass
            else:
                if not holds_stand_ins(checkpoint):
                    return checkpoint
        _ = self.view  # the pickled classes live in the recipe module (built-in) or the team's package
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

            dest = self.tmpdir / "upgraded" / golden.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            checkpoint = self.load(golden)  # a safe load left no stand-ins (``load`` falls back to trust)
            source = self.trusted[golden.name] if golden.name in self.trusted else self.fetch(golden)
            with lightning_migration_disabled():
                upgrade(checkpoint)
            save_checkpoint(checkpoint, dest, source=source)
            self._upgraded[golden.name] = (checkpoint, dest)
        return self._upgraded[golden.name]
