"""chemprop 2.1 renamed its metric classes and moved its losses into ``chemprop.nn.metrics``.

Why: an MPNN checkpoint pickles its metric objects in ``hyper_parameters["metrics"]`` (and a
predictor's ``criterion``); chemprop 2.1 rebuilt both on torchmetrics under new names, so a file
saved by 2.0 fails to unpickle under 2.1 (``AttributeError: Can't get attribute 'RMSEMetric'``):
no unit can run on it. These redirects let it load: the trusted loader builds the 2.1 class (whose
loader, ``MPNN.load_from_checkpoint``, rebuilds a metric that lacks torchmetrics' state), the safe
loader an inert stand-in. ``chemprop.*`` is vouched for as it is (its other pickled classes, the
submodule classes saved as ``cls`` and the ``Activation`` enum, did not move), and so is
``torchmetrics.*`` (2.1's files pickle its functions), so ``inspect`` and ``--dry-run`` read 2.0's
and 2.1's files without ``--trust``.
When: chemprop 2.1.0 (chemprop#1022, the metric overhaul; reported in chemprop#1156).
"""

ID = "chemprop-2.1-metrics-renamed"
VERSION = "2.1.0"
ORDER = 10

_METRICS = {
    "MSEMetric": "MSE",
    "MAEMetric": "MAE",
    "RMSEMetric": "RMSE",
    "BoundedMSEMetric": "BoundedMSE",
    "BoundedMAEMetric": "BoundedMAE",
    "BoundedRMSEMetric": "BoundedRMSE",
    "R2Metric": "R2Score",
    "BinaryAUROCMetric": "BinaryAUROC",
    "BinaryAUPRCMetric": "BinaryAUPRC",
    "BinaryAccuracyMetric": "BinaryAccuracy",
    "BinaryF1Metric": "BinaryF1Score",
    "BCEMetric": "BCELoss",
    "CrossEntropyMetric": "CrossEntropyLoss",
    "SIDMetric": "SID",
    "WassersteinMetric": "Wasserstein",
}
_LOSSES = {
    "MSELoss": "MSE",
    "BoundedMSELoss": "BoundedMSE",
    "SIDLoss": "SID",
    "WassersteinLoss": "Wasserstein",
    "BinaryDirichletLoss": "DirichletLoss",
    "MulticlassDirichletLoss": "DirichletLoss",
    "LossFunction": "ChempropMetric",
}

REDIRECTS = {
    **{f"chemprop.nn.metrics.{old}": f"chemprop.nn.metrics.{new}" for old, new in _METRICS.items()},
    **{f"chemprop.nn.loss.{old}": f"chemprop.nn.metrics.{new}" for old, new in _LOSSES.items()},
    "chemprop.nn.loss.*": "chemprop.nn.metrics.*",  # the losses that kept their names
    "chemprop.*": "chemprop.*",
    # 2.1's metrics are torchmetrics Metrics: its own files pickle torchmetrics functions (dim_zero_sum, ...)
    "torchmetrics.*": "torchmetrics.*",
}


def upgrade(checkpoint):
    return checkpoint  # the redirects did the work while the file loaded
