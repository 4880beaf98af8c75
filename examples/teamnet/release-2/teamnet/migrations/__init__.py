"""teamnet's migration units, one file per change that breaks older checkpoints (loaded by path)."""
