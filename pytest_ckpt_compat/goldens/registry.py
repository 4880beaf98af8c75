"""The one reader and writer of ``golden/registry.txt``: ``<release>/<scenario>.ckpt sha256:<hex>`` lines.

Why one room: the plugin fetches by these hashes, ``golden add`` rewrites them, and the tests
check them; a second parser is a second opinion on what a registry line means. The format is
pooch's registry format, kept strict (sha256 only, no duplicates) so a bad line fails loudly.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..core.errors import GoldenError
from ..files.writing.atomic import write_bytes

REGISTRY_FILE = "registry.txt"
_HASH = re.compile(r"sha256:[0-9a-fA-F]{64}")


def read_registry(golden_dir: str | os.PathLike, *, missing_ok: bool = False) -> dict[str, str]:
    """``{relative/path: "sha256:<hex>"}`` of ``golden_dir/registry.txt`` (comments and blank lines allowed).

    ``missing_ok``: an absent file is an empty registry (a golden folder being started).
    """
    path = Path(golden_dir) / REGISTRY_FILE
    entries: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if missing_ok:
            return entries
        raise GoldenError(f"no golden registry {path}") from None
    except OSError as exc:
        raise GoldenError(f"cannot read golden registry {path}: {exc}") from exc
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 2 or not _HASH.fullmatch(parts[1]):
            raise GoldenError(f"{path}:{lineno}: expected '<relative/path> sha256:<64 hex digits>', got {line!r}")
        problem = name_problem(parts[0])
        if problem:
            raise GoldenError(f"{path}:{lineno}: {problem}")
        if parts[0] in entries:
            raise GoldenError(f"{path}:{lineno}: duplicate entry {parts[0]!r}")
        entries[parts[0]] = parts[1].lower()
    return dict(sorted(entries.items()))


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a golden's name (it must stay inside the cache and the source), or None.

    A name is a relative ``/``-separated path (``<release>/<scenario>.ckpt``): no absolute path, drive,
    backslash, ``.`` or ``..`` part and no empty part, so ``cache / name`` never leaves the cache.
    """
    parts = name.split("/")
    if name.startswith("/") or "\\" in name or ":" in parts[0] or any(p in ("", ".", "..") for p in parts):
        return f"golden name {name!r} must be a relative path '<release>/<file>' without '.', '..' or '\\' parts"
    if len(parts) < 2:
        return f"golden name {name!r} must be '<release>/<file>'"
    return None


def format_registry(entries: dict[str, str]) -> str:
    return "".join(f"{name} {entries[name]}\n" for name in sorted(entries))


def write_registry(golden_dir: str | os.PathLike, entries: dict[str, str]) -> None:
    """Atomic rewrite (sorted, one entry per file) so readers never see half a registry."""
    write_bytes(Path(golden_dir) / REGISTRY_FILE, format_registry(entries).encode("utf-8"))


def update_registry(
    entries: dict[str, str], folder: str, files: dict[str, str]
) -> tuple[dict[str, str], list[str], list[str]]:
    """Replace every entry of ``folder/`` by ``files`` (name -> sha256 hex). Returns (new, added, removed)."""
    prefix = folder + "/"
    old = {k: v for k, v in entries.items() if k.startswith(prefix)}
    new = {k: v for k, v in entries.items() if not k.startswith(prefix)}
    for name, digest in files.items():
        new[prefix + name] = f"sha256:{digest}"
    added = sorted(k for k in new if k.startswith(prefix) and old.get(k) != new[k])
    removed = sorted(k for k in old if k not in new)
    return new, added, removed
