"""Golden checkpoints: the registry, their recorded truth, and a verified, cached, lock-safe fetch.

Why pooch: the registry pins a sha256 per file, so a golden is either byte-identical to what
was recorded or refused, and a verified copy is reused offline. Two gaps of pooch are filled
here: local folders as a source (pooch has no ``file://``; a copying downloader keeps the hash
check and the cache) and concurrent fetches from pytest-xdist workers (a per-entry
``filelock.FileLock``, so workers neither corrupt nor download twice).

The registry and the ``meta.json`` truth are read locally (the repository's ``golden/`` or the
copy shipped in the wheel); only the ``.ckpt`` files travel: the hashes must not come from the
server whose files they check.
"""

from __future__ import annotations

import hashlib
import logging
import os
import urllib.parse
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from ..core import progress
from ..core.errors import GoldenError, HashMismatch
from .downloads import (
    DEFAULT_DEADLINE,
    DEFAULT_MAX_BYTES,
    ENV_DEADLINE,
    ENV_MAX_BYTES,
    BoundedDownload,
    copy_from_folder,
    env_number,
)
from .environments import release_sort_key
from .meta import META_FILE, read_meta
from .registry import REGISTRY_FILE, name_problem, read_registry

ENV_URL = "CKPT_COMPAT_URL"
ENV_CACHE = "CKPT_COMPAT_CACHE"
CACHE_PROJECT = "pytest-ckpt-compat"


@dataclass(frozen=True)
class Golden:
    """One registry entry with the metadata its release recorded for it."""

    name: str  # "<release>/<scenario>.ckpt", the registry key
    sha256: str
    meta: dict | None = field(default=None, compare=False, repr=False)  # the scenario entry of meta.json
    release_meta: dict | None = field(default=None, compare=False, repr=False)
    suite: str = ""  # "" for the built-in suite; a team's suite is named after its recipe's package

    @property
    def key(self) -> str:
        """Unique across the suites of a session: ``teamnet:1.0.0/end_of_fit.ckpt``."""
        return f"{self.suite}:{self.name}" if self.suite else self.name

    @property
    def release(self) -> str:
        return self.name.split("/", 1)[0]

    @property
    def scenario(self) -> str:
        return Path(self.name).stem

    @property
    def id(self) -> str:
        """Test id prefix: ``-k 1.6`` or ``-k end_of_fit`` select on it (``-k teamnet`` a team's suite)."""
        return f"{self.suite}-{self.release}-{self.scenario}" if self.suite else f"{self.release}-{self.scenario}"

    @property
    def saved_version(self) -> str:
        return str((self.meta or {}).get("saved_version") or self.release)

    @property
    def truth(self) -> dict:
        if not self.meta or "truth" not in self.meta:
            raise GoldenError(f"{self.name}: {self.release}/{META_FILE} has no truth for scenario {self.scenario!r}")
        return self.meta["truth"]

    @property
    def requires(self) -> str | None:
        return (self.meta or {}).get("requires")


def repository_golden_dir() -> Path | None:
    """``golden/`` next to the package when running from a checkout, else ``None``."""
    candidate = Path(__file__).resolve().parents[2] / "golden"
    return candidate if (candidate / REGISTRY_FILE).is_file() else None


def packaged_golden_dir() -> Path | None:
    candidate = Path(__file__).resolve().parents[1] / "_data" / "golden"
    return candidate if (candidate / REGISTRY_FILE).is_file() else None


def is_url(source: str) -> bool:
    return urllib.parse.urlsplit(str(source)).scheme in ("http", "https")


class GoldenStore:
    """Registry + truth from ``registry_dir``, files from ``source`` (URL or folder), kept in ``cache``."""

    def __init__(
        self,
        source: str | os.PathLike,
        cache: str | os.PathLike | None = None,
        *,
        registry_dir: str | os.PathLike | None = None,
        retries: int = 0,
        progressbar: bool | None = None,
        deadline: float | None = None,
        max_bytes: int | None = None,
        suite: str = "",
    ):
        self.suite = suite
        self.source = str(source)
        if not is_url(self.source):
            self.source = str(Path(self.source).expanduser().resolve())
            if not Path(self.source).is_dir():
                raise GoldenError(f"golden source {self.source} is neither an http(s) URL nor an existing folder")
        if registry_dir is None:
            local = None if is_url(self.source) else Path(self.source)
            if local is not None and (local / REGISTRY_FILE).is_file():
                registry_dir = local
            else:
                registry_dir = repository_golden_dir() or packaged_golden_dir()
        if registry_dir is None or not (Path(registry_dir) / REGISTRY_FILE).is_file():
            raise GoldenError(
                f"no {REGISTRY_FILE} found (looked in {registry_dir or 'the repository and the installed package'})"
            )
        self.registry_dir = Path(registry_dir)
        self.cache = Path(cache) if cache is not None else default_cache()
        self.retries = retries
        self.deadline = float(deadline if deadline is not None else env_number(ENV_DEADLINE, DEFAULT_DEADLINE))
        self.max_bytes = int(max_bytes if max_bytes is not None else env_number(ENV_MAX_BYTES, DEFAULT_MAX_BYTES))
        self.progressbar = progress.wanted() if progressbar is None else progressbar
        self._verified: set[tuple] = set()
        self._metas: dict[str, dict | None] = {}
        _quiet_pooch()

    # ------------------------------------------------------------------ registry and truth
    @cached_property
    def registry(self) -> dict[str, str]:
        return read_registry(self.registry_dir)

    def release_meta(self, release: str) -> dict | None:
        """``<release>/meta.json``, checked for the shape the matrix reads (a named error, not a crash)."""
        if release not in self._metas:
            self._metas[release] = read_meta(self.registry_dir / release / META_FILE)
        return self._metas[release]

    @cached_property
    def goldens(self) -> list[Golden]:
        """Every registry entry, oldest release first (PEP 440 order), then scenario name."""
        out = []
        for name, digest in self.registry.items():
            meta = self.release_meta(name.split("/", 1)[0])
            scenario = (meta or {}).get("scenarios", {}).get(Path(name).stem)
            digest = digest.split(":", 1)[1]
            out.append(Golden(name=name, sha256=digest, meta=scenario, release_meta=meta, suite=self.suite))
        return sorted(out, key=lambda g: (release_sort_key(g.release), g.scenario))

    def get(self, name: str) -> Golden:
        for golden in self.goldens:
            if golden.name == name or golden.id == name:
                return golden
        raise GoldenError(f"{name!r} is not in the golden registry {self.registry_dir / REGISTRY_FILE}")

    def unregistered_scenarios(self) -> list[str]:
        """``release/scenario`` listed in a ``meta.json`` without a registry line: never tested."""
        registered = set(self.registry)
        missing = []
        for meta_path in sorted(self.registry_dir.glob(f"*/{META_FILE}")):
            release = meta_path.parent.name
            for scenario, entry in (self.release_meta(release) or {}).get("scenarios", {}).items():
                name = f"{release}/{entry.get('file') or scenario + '.ckpt'}"
                if name not in registered:
                    missing.append(name)
        return missing

    # ------------------------------------------------------------------ fetching
    def url(self, golden: Golden | str) -> str:
        name = golden.name if isinstance(golden, Golden) else golden
        if is_url(self.source):
            return self.source.rstrip("/") + "/" + urllib.parse.quote(name)
        return str(Path(self.source) / name)

    def fetch(self, golden: Golden | str) -> Path:
        """Local path of the verified golden; downloads at most once per cache, even across processes.

        A file verified earlier in this process is reused when its size and mtime are unchanged: good
        enough for the safe loader, never for a trusted load (:meth:`verified_copy` re-hashes).
        """
        import pooch
        from filelock import FileLock

        golden = golden if isinstance(golden, Golden) else self.get(golden)
        problem = name_problem(golden.name)
        if problem:
            raise GoldenError(f"{problem} (registry {self.registry_dir / REGISTRY_FILE})")
        dest = self.cache / golden.name
        stamp = _stamp(dest)
        if stamp is not None and stamp in self._verified:
            return dest
        lock_path = self.cache / ".locks" / (golden.name.replace("/", "__") + ".lock")
        try:
            lock_path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise GoldenError(
                f"cannot create the golden cache folder {self.cache}: {exc.strerror or exc}; "
                f"choose another with --ckpt-compat-cache or {ENV_CACHE}"
            ) from None
        with FileLock(str(lock_path)):
            base = (
                self.source.rstrip("/") + "/" if is_url(self.source) else Path(self.source).as_posix().rstrip("/") + "/"
            )
            pup = pooch.Pooch(
                path=self.cache,
                base_url=base,
                registry={golden.name: f"sha256:{golden.sha256}"},
                retry_if_failed=self.retries,
            )
            downloader = copy_from_folder if not is_url(self.source) else self._http_downloader(golden)
            try:
                path = Path(pup.fetch(golden.name, downloader=downloader))
            except GoldenError:
                raise
            except ValueError as exc:
                if "hash" in str(exc).lower():
                    raise HashMismatch(
                        f"golden {golden.name} from {self.url(golden)} does not have the registry's sha256 "
                        f"{golden.sha256}; the download was deleted, nothing was cached ({exc})"
                    ) from None
                raise GoldenError(f"cannot fetch golden {golden.name} from {self.url(golden)}: {exc}") from exc
            except FileNotFoundError as exc:
                raise GoldenError(
                    f"golden {golden.name} is missing from the source folder {self.source}: {exc}"
                ) from exc
            except Exception as exc:  # requests errors: 404, refused connection, truncated transfer
                raise GoldenError(
                    f"cannot fetch golden {golden.name} from {self.url(golden)}: {type(exc).__name__}: {exc}. "
                    f"A verified copy is used offline once it is in the cache ({self.cache})"
                ) from exc
        stamp = _stamp(path)
        if stamp is not None:
            self._verified.add(stamp)
        return path

    def verified_copy(self, golden: Golden, folder: Path) -> Path:
        """A private copy of the golden under ``folder`` whose bytes were hashed just now against the registry.

        For trusted loads (which may run pickled code): the cache may be shared and changed after it
        was verified, so the bytes are read once, hashed, and only those bytes are written and used.
        A cached file that no longer matches is fetched again (pooch replaces it).
        """
        for attempt in (1, 2):
            data = self.fetch(golden).read_bytes()
            if hashlib.sha256(data).hexdigest() == golden.sha256:
                break
            self._verified.discard(_stamp(self.cache / golden.name))
            if attempt == 2:
                raise HashMismatch(f"cached golden {self.cache / golden.name} keeps changing; not loaded with trust")
        dest = Path(folder) / golden.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
        return dest

    def _http_downloader(self, golden: Golden) -> BoundedDownload:
        cap = (golden.meta or {}).get("size") or self.max_bytes
        return BoundedDownload(self.deadline, cap, self.progressbar)


def default_cache() -> Path:
    import pooch

    return Path(pooch.os_cache(CACHE_PROJECT))


def resolve_source(option: str | None = None, ini: str | None = None) -> str:
    """Where goldens come from: option, then env, then ini, then the checkout's ``golden/``."""
    for value in (option, os.environ.get(ENV_URL), ini):
        if value:
            return str(value)
    repo = repository_golden_dir()
    if repo is not None:
        return str(repo)
    raise GoldenError(
        "no golden source configured: pass --ckpt-compat-url=URL_OR_FOLDER, set the ini option "
        f"ckpt_compat_url, or the environment variable {ENV_URL}"
    )


def resolve_cache(option: str | None = None, ini: str | None = None) -> Path:
    for value in (option, os.environ.get(ENV_CACHE), ini):
        if value:
            return Path(value).expanduser()
    return default_cache()


def _stamp(path: Path) -> tuple | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (str(path), st.st_size, st.st_mtime_ns)


def _quiet_pooch() -> None:
    """pooch logs every download to stderr through its own handler, even under pytest capture."""
    import pooch

    pooch.get_logger().setLevel(logging.WARNING)
