"""The hyperparameter ``hidden`` was renamed ``width``.

Why: ``load_from_checkpoint`` passes the saved hyperparameters to ``TeamNet``, whose constructor has
no ``hidden`` any more: Lightning drops the unknown name without a word, the default ``width`` (8)
replaces the trained one, and the weights no longer fit (``size mismatch for backbone.weight``);
``TeamNet(**hyper_parameters)`` fails with ``unexpected keyword argument 'hidden'``.
When: teamnet 2.0.0.
"""

from pytest_ckpt_compat.toolkit import hparams

ID = "teamnet-2.0-hidden-renamed-width"
VERSION = "2.0.0"
ORDER = 30


def upgrade(checkpoint):
    hparams.rename(checkpoint, {"hidden": "width"})
    return checkpoint
