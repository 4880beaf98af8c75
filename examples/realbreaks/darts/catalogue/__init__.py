"""The catalogue a darts team would register for the 0.22 -> 0.23 break (darts#1443)."""

from pathlib import Path

from pytest_ckpt_compat import Catalogue

FOLDER = Path(__file__).resolve().parent


def catalogue() -> Catalogue:
    """darts' own catalogue: its redirect unit in this folder. darts' Lightning checkpoints (``*.ckpt``)
    pickle no darts class and load under 0.23 as they are: ``recognizes`` accepts none of them, so no
    unit runs on them and no version key is stamped. The redirects apply to the whole-model files
    (``model.save()``'s file and ``_model.pth.tar``), which ``ckpt-compat upgrade`` rewrites by name."""
    return Catalogue(
        name="darts",
        path=FOLDER,
        version_key="darts_version",
        target_version="0.23.0",
        recognizes=lambda checkpoint: False,
    )
