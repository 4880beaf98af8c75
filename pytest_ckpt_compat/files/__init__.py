"""Files: the safe loader (restricted unpickler, allowlists) and the atomic writer (``writing/``).
The only layer that opens a user's checkpoint or replaces it."""
