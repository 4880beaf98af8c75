"""teamnet's catalogue for pytest-ckpt-compat: the units that upgrade checkpoints of older releases.

``pytest --ckpt-compat-recipe teamnet.goldens:RECIPE`` registers it (the recipe names it), and so
can a user: ``register_catalogue(teamnet.compat.catalogue())`` before loading an old file. It needs
``pytest-ckpt-compat`` (``pip install teamnet[compat]``); the rest of teamnet does not.

Version stamp: ``TeamNet.on_save_checkpoint`` writes ``teamnet_version`` into every file it saves,
whether or not pytest-ckpt-compat is installed or a ``CheckpointUpgrade`` callback is in the
Trainer (the other way, stamping at save time through ``CheckpointUpgrade``, would date only the
files of users who run that callback). Release 1 wrote no key: ``is_teamnet_file`` knows its files.
"""

from importlib.metadata import version
from pathlib import Path

UNITS = Path(__file__).resolve().parent / "migrations"
VERSION_KEY = "teamnet_version"


def installed_version():
    return version("teamnet")


def is_teamnet_file(checkpoint):
    """A TeamNet checkpoint without a version key (release 1): its hyperparameters and state_dict say so."""
    hparams = checkpoint.get("hyper_parameters") or {}
    state = checkpoint.get("state_dict") or {}
    has_hparams = {"lr", "loss"} <= set(hparams) and ("hidden" in hparams or "width" in hparams)
    return has_hparams and "head.weight" in state


def catalogue():
    """The Catalogue of the units in ``teamnet/migrations/``, which target the installed teamnet."""
    from pytest_ckpt_compat import Catalogue

    return Catalogue(
        name="teamnet",
        path=UNITS,
        version_key=VERSION_KEY,
        target_version=installed_version,
        models=("teamnet.model.TeamNet",),
        recognizes=is_teamnet_file,
    )
