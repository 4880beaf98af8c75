"""The tiny team's first unit: nothing to change in its files.

Why: a team catalogue that runs on a golden saved by the installed Lightning writes its own ledger
entry and no Lightning one; the matrix's ``upgrade`` check must accept that.
When: the tiny team's release 1.0.0.
"""

ID = "tiny-1.0.0-noop"
VERSION = "1.0.0"


def upgrade(checkpoint):
    return checkpoint
