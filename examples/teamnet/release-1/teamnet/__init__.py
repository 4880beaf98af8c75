"""teamnet 1.0.0: the example team package (a tiny regression model) whose checkpoints its users keep."""

__version__ = "1.0.0"
