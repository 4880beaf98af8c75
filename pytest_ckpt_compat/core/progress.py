"""Progress bars for long runs, only for a person at a terminal; quiet in CI, under xdist and in pipes.

Why optional: tqdm is not a runtime dependency; without it (or without a terminal) the same calls
fall back to plain iteration and ``print``, so output parsed by scripts never holds bar fragments.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence
from typing import TextIO, TypeVar

T = TypeVar("T")


def wanted(stream: TextIO | None = None) -> bool:
    """A bar helps here: tqdm importable, ``stream`` (stderr) is a terminal, not CI, not an xdist worker."""
    stream = sys.__stderr__ if stream is None else stream
    if os.environ.get("CI") or os.environ.get("PYTEST_XDIST_WORKER"):
        return False
    if stream is None or not getattr(stream, "isatty", lambda: False)():
        return False
    try:
        import tqdm  # noqa: F401
    except ImportError:
        return False
    return True


def iterate(items: Sequence[T], *, desc: str, unit: str = "it") -> Iterable[T]:
    """``items`` with a bar on stderr when :func:`wanted` and there is more than one item."""
    if len(items) < 2 or not wanted():
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit=unit, file=sys.stderr, leave=False, dynamic_ncols=True)


def echo(message: str, *, file: TextIO | None = None) -> None:
    """``print`` that does not tear an active bar (``tqdm.write`` when bars are on)."""
    file = sys.stdout if file is None else file
    if wanted():
        from tqdm import tqdm

        tqdm.write(message, file=file)
    else:
        print(message, file=file)
