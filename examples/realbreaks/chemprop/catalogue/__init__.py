"""The catalogue a chemprop team would register for the 2.0 -> 2.1 break (chemprop#1156)."""

from pathlib import Path

from pytest_ckpt_compat import Catalogue

FOLDER = Path(__file__).resolve().parent


def catalogue() -> Catalogue:
    """chemprop's own catalogue: its units in this folder, its version key, the release they reach."""
    return Catalogue(name="chemprop", path=FOLDER, version_key="chemprop_version", target_version="2.1.2")
