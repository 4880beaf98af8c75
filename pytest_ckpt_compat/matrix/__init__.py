"""The compat matrix: exact comparisons, the per-golden workspace, the checks (load, resume,
weights_only, plain resume), drift, known Lightning defects, the session and its report."""
