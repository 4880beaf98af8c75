"""The team catalogue of an example under ``examples/realbreaks/``, registered for one test.

Each example keeps its catalogue in a ``catalogue`` package beside its files; the same package name in
every example, so it is imported from the example's folder and dropped from ``sys.modules`` afterwards
(the next example's ``catalogue`` is then its own).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pytest_ckpt_compat.core.catalogue import Catalogue, register_catalogue, unregister_catalogue


@contextmanager
def registered_example_catalogue(folder: Path, name: str) -> Iterator[Catalogue]:
    """Import ``folder/catalogue``'s ``catalogue()``, register it as ``name`` while the block runs."""
    sys.path.insert(0, str(folder))
    try:
        from catalogue import catalogue  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(folder))
    registered = register_catalogue(catalogue())
    assert registered.name == name, f"{folder}'s catalogue is {registered.name!r}, not {name!r}"
    try:
        yield registered
    finally:
        unregister_catalogue(name)
        sys.modules.pop("catalogue", None)
