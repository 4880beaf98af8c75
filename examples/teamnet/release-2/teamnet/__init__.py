"""teamnet 2.0.0: the example team package (a tiny regression model) whose checkpoints its users keep."""

from importlib.metadata import version

__version__ = version("teamnet")
VERSION_KEY = "teamnet_version"  # every checkpoint a TeamNet saves carries the release that saved it
