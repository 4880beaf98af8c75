"""SmoothL1 moved from ``teamnet.losses`` to ``teamnet.nn.losses``.

Why: a TeamNet checkpoint pickles its ``loss`` hyperparameter (a ``SmoothL1`` object) by its module
path; release 2 removed ``teamnet/losses.py``, so a release-1 file no longer unpickles
(``No module named 'teamnet.losses'``) and no other unit could run on it. The redirect lets the
loader build the class from its new home.
When: teamnet 2.0.0.
"""

ID = "teamnet-2.0-smoothl1-moved"
VERSION = "2.0.0"
ORDER = 10

REDIRECTS = {"teamnet.losses.SmoothL1": "teamnet.nn.losses.SmoothL1"}


def upgrade(checkpoint):
    return checkpoint  # the redirect did the work while the file loaded
