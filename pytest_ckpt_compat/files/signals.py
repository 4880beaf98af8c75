"""SIGTERM handled like Ctrl-C during a CLI run, so an interrupted write cleans up after itself.

Why: the default SIGTERM action ends the process at once, leaving a temp file as large as the
checkpoint beside it. Raised as a ``KeyboardInterrupt`` subclass, it runs the same cleanup
(``writing.atomic`` removes its temp file) and the CLI prints what was done, exit 128 + signal.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so the same cleanup (temp file removed, summary) runs."""

    signal_number = signal.SIGTERM


@contextlib.contextmanager
def signals_as_exceptions() -> Iterator[None]:
    """SIGTERM raises ``_Terminated`` in the main thread for the run (the default would kill the
    process before the half-written temp file is removed)."""

    def terminate(signum, frame):
        raise _Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, terminate)
    except ValueError:  # not the main thread (an embedding application): leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
