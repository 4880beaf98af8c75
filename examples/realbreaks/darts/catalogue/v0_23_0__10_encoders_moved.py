"""darts 0.23 moved its covariate encoders from ``darts.utils.data`` to ``darts.dataprocessing.encoders``.

Why: a darts model saved with ``add_encoders`` pickles its ``SequentialEncoder`` and the encoders and
index generators in it; ``model.save()`` and the ``_model.pth.tar`` beside the Lightning checkpoints
are ``torch.save`` of the whole model, so a 0.22 file fails under 0.23 with ``ModuleNotFoundError:
No module named 'darts.utils.data.encoders'`` in ``TorchForecastingModel.load`` and
``load_from_checkpoint`` alike (the maintainers' answer in darts#1443: retrain). The encoders kept
their names; the index generators also went plural (``PastCovariateIndexGenerator`` ->
``PastCovariatesIndexGenerator``). Their pickled state did not change, so the names are all a file needs.
When: darts 0.23.0 (module ``darts.dataprocessing.encoders``, December 2022).
"""

ID = "darts-0.23-encoders-moved"
VERSION = "0.23.0"
ORDER = 10

_OLD, _NEW = "darts.utils.data.encoder_base", "darts.dataprocessing.encoders.encoder_base"

REDIRECTS = {
    "darts.utils.data.encoders.*": "darts.dataprocessing.encoders.encoders.*",
    **{
        f"{_OLD}.{kind}CovariateIndexGenerator": f"{_NEW}.{kind}CovariatesIndexGenerator"
        for kind in ("", "Past", "Future")
    },
    f"{_OLD}.*": f"{_NEW}.*",  # Encoder, SingleEncoder, SequentialEncoderTransformer: same names
    "darts.*": "darts.*",  # vouched for as it is: a file 0.23 wrote is known, and left alone
}


def upgrade(checkpoint):
    return checkpoint  # the redirects do the work, in the file's pickled names
