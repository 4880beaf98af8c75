"""darts 0.23's models, encoders and index generators read attributes that a 0.22 whole-model file lacks.

Why: once its encoders' names are redirected, a 0.22 ``model.save()`` file (or ``_model.pth.tar``)
unpickles under 0.23, but ``TorchForecastingModel.load`` / ``load_from_checkpoint`` then fail with
``AttributeError: 'BlockRNNModel' object has no attribute '_module_path'``: 0.23 rebuilds the
Lightning module from ``_module_path`` and ``_module_name`` (the class pickled under ``model``)
instead of from the pickled module, and reads ``_uses_past_covariates`` /
``_uses_future_covariates`` where 0.22 looked at the covariate series it kept. This unit's
``OBJECT_STATE`` gives the file those attributes, read off the pickle itself (the root class's
module, its ``_...Module`` class, whether the saved ``past_covariate_series`` /
``future_covariate_series`` is ``None``); ``ckpt-compat upgrade`` sets them in the model's state.
Its encoders fail next (``'PastCovariatesIndexGenerator' object has no attribute 'shift_start'``):
0.23's index generators keep ``shift_start`` / ``shift_end`` and its ``SequentialEncoder``
``lags_past_covariates`` / ``lags_future_covariates``, all ``None`` for a torch model (lags are
a RegressionModel's), so they get ``None``.
And 0.22 kept ``past_covariate_series`` / ``future_covariate_series`` as class attributes until a
fit set them (a BlockRNNModel never sets the future one), where 0.23 reads them off the object: an
absent one is set ``None``.
Limits: ``_expect_past_covariates`` / ``_expect_future_covariates`` are set ``False``, as 0.23
sets them after a fit on one series (a model fit on a list of series with covariates will not
insist on them at ``predict``); an encoder with a fitted ``transformer`` was not tried.
When: darts 0.23.0.
"""

import pickletools

_BASE, _ENCODERS = "darts.dataprocessing.encoders.encoder_base", "darts.dataprocessing.encoders.encoders"
_STRINGS = ("BINUNICODE", "SHORT_BINUNICODE", "UNICODE")
_GENERATOR = {"shift_start": None, "shift_end": None}  # lags are a RegressionModel's; a torch model's are None

ID = "darts-0.23-model-attributes"
VERSION = "0.23.0"
ORDER = 20
REQUIRES = ("darts-0.23-encoders-moved",)


def upgrade(checkpoint):
    return checkpoint  # Lightning checkpoints of darts need nothing: OBJECT_STATE works on whole-model files


def _saved(ops, key):
    return any(arg == key and op.name in _STRINGS for op, arg, _ in ops)


def _first_value_is_none(ops, key):
    """Whether the value pushed right after the first push of the string ``key`` is ``None`` (memo ops skipped)."""
    for index, (opcode, arg, _) in enumerate(ops):
        if arg == key and opcode.name in _STRINGS:
            rest = [op for op, _, _ in ops[index + 1 :] if op.name not in ("BINPUT", "LONG_BINPUT", "MEMOIZE", "PUT")]
            return rest[0].name == "NONE" if rest else True
    return True  # not saved at all


def OBJECT_STATE(root, pickle):
    """The attributes 0.23 reads, by class: on the model (root), its encoders and index generators."""
    module = root.rpartition(".")[0]
    if not module.startswith("darts.models.forecasting."):
        return {}
    ops = list(pickletools.genops(pickle))
    names = [str(arg).split(" ") for op, arg, _ in ops if op.name == "GLOBAL"]
    modules = [name for mod, name in names if mod == module and name.startswith("_") and name.endswith("Module")]
    if not modules:
        return {}
    generators = {f"{_BASE}.{kind}CovariatesIndexGenerator": _GENERATOR for kind in ("Past", "Future")}
    # 0.22 kept the covariate series as class attributes (None) until a fit set them: absent, they are None
    series = {key: None for key in ("past_covariate_series", "future_covariate_series") if not _saved(ops, key)}
    return {
        root: {
            "_module_path": module,
            "_module_name": modules[0],
            "_uses_past_covariates": not _first_value_is_none(ops, "past_covariate_series"),
            "_uses_future_covariates": not _first_value_is_none(ops, "future_covariate_series"),
            "_expect_past_covariates": False,  # as 0.23 sets them after a fit on one series
            "_expect_future_covariates": False,
            **series,
        },
        f"{_ENCODERS}.SequentialEncoder": {"lags_past_covariates": None, "lags_future_covariates": None},
        **generators,
    }
