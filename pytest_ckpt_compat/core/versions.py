"""The one place that parses and compares versions, and finds the installed Lightning."""

from __future__ import annotations

import functools
import importlib
import os
from importlib import metadata

from packaging.version import InvalidVersion as _PackagingInvalidVersion
from packaging.version import Version

from .errors import InvalidVersion

TOOL_VERSION = "0.1.0"  # this package's version (pyproject's [project] version; a test keeps them equal)

VERSION_KEY = "pytorch-lightning_version"
LEGACY_VERSION_KEY = "legacy_pytorch-lightning_version"

# Lightning ships under two import names; both save the same checkpoint format. The one tuple of
# them: the loader's allowlist and redirects, the integration and the matrix all derive from it.
LIGHTNING_MODULES = ("lightning.pytorch", "pytorch_lightning")


def parse(version: object, *, what: str = "version") -> Version:
    """Parse a version (PEP 440: rc/dev sort below the release, .postN above it).

    A local label is dropped: ``2.6.6+local`` (a source build) writes the format of 2.6.6, and
    must not count as newer than it.
    """
    try:
        parsed = version if isinstance(version, Version) else Version(str(version).strip())
    except (_PackagingInvalidVersion, TypeError) as exc:
        raise InvalidVersion(f"{what} {version!r} is not a valid version: {exc}") from None
    return Version(parsed.public) if parsed.local is not None else parsed


# With both packages installed, ``CKPT_COMPAT_LIGHTNING=pytorch_lightning`` picks the standalone one.
ENV_MODULE = "CKPT_COMPAT_LIGHTNING"


@functools.cache
def lightning_module_name() -> str:
    """Import name of the installed Lightning trainer package (unified ``lightning`` preferred)."""
    chosen = os.environ.get(ENV_MODULE)
    if chosen:
        if chosen not in LIGHTNING_MODULES:
            raise ValueError(f"{ENV_MODULE}={chosen!r}: expected one of {', '.join(LIGHTNING_MODULES)}")
        importlib.import_module(chosen)
        return chosen
    for name in LIGHTNING_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            continue
        return name
    raise ImportError("neither `lightning` nor `pytorch_lightning` is installed; pass target_version explicitly")


@functools.cache
def installed_lightning_version() -> str:
    """Version of the installed Lightning, the default upgrade target (read from metadata: no import).

    Cached: reading the metadata costs milliseconds, and the matrix asks once per cell at collection
    (8,000+ cells made that about 40 s of CPU per pytest process). The version cannot change under a
    running process."""
    found = []
    for dist in ("pytorch-lightning", "lightning"):
        try:
            found.append(parse(metadata.version(dist)))
        except metadata.PackageNotFoundError:
            continue
    if not found:
        raise ImportError("neither `lightning` nor `pytorch-lightning` is installed; pass target_version explicitly")
    return str(max(found))
