"""The catalogue a chemprop team would register for the 2.0 -> 2.1 break (chemprop#1156)."""

from pathlib import Path

from pytest_ckpt_compat import Catalogue

FOLDER = Path(__file__).resolve().parent


def is_chemprop_file(checkpoint: dict) -> bool:
    """An MPNN's checkpoint of chemprop 2.0: chemprop writes no version key of its own, so its files are
    known by shape. 2.1's files (their metrics' ``task_weights`` in the state_dict) need none of these
    units: left alone, they get no ledger entry and no version stamp."""
    hparams = checkpoint.get("hyper_parameters") or {}
    state = checkpoint.get("state_dict") or {}
    return (
        {"message_passing", "agg", "predictor"} <= set(hparams)
        and any(str(k).startswith("message_passing.") for k in state)
        and "metrics.0.task_weights" not in state
    )


def catalogue() -> Catalogue:
    """chemprop's own catalogue: its units in this folder, its version key, the release they reach, and
    how to know its files that carry no version key (all of 2.0's)."""
    return Catalogue(
        name="chemprop",
        path=FOLDER,
        version_key="chemprop_version",
        target_version="2.1.2",
        recognizes=is_chemprop_file,
    )
