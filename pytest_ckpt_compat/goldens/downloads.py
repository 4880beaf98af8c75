"""How a golden's bytes travel into pooch's cache: a copy from a folder, or a bounded HTTP download.

Why not pooch's ``HTTPDownloader`` alone: its timeout is per read, so a server that trickles a
byte at a time, or never ends the body, holds a run forever. Here a download has an overall
deadline (``CKPT_COMPAT_FETCH_DEADLINE`` seconds, all tries together) and a size cap (the size
``meta.json`` recorded, else ``CKPT_COMPAT_FETCH_MAX_BYTES``); pooch still checks the hash.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from ..core.errors import GoldenError

__all__ = ["BoundedDownload", "copy_from_folder", "env_number"]

ENV_DEADLINE = "CKPT_COMPAT_FETCH_DEADLINE"  # seconds for one golden's download, all tries together
ENV_MAX_BYTES = "CKPT_COMPAT_FETCH_MAX_BYTES"  # cap for a golden whose meta.json records no size
DEFAULT_DEADLINE = 600.0
DEFAULT_MAX_BYTES = 1 << 30
_READ_TIMEOUT = 60.0
_OLD_URLLIB3_READ = 1024  # urllib3 < 2.3 has no read1: small blocking reads keep the deadline near


class BoundedDownload:
    """A pooch downloader with an overall deadline and a size cap (pooch's timeout is per read only).

    A server that trickles a byte at a time, or sends without end, is cut off: after ``deadline``
    seconds for all tries together, or past ``max_bytes`` (the size ``meta.json`` recorded, when it
    did). Each read takes what has arrived (``read1``; urllib3 < 2.3 lacks it: 1 KiB reads), so the
    deadline holds however slow the body.
    """

    def __init__(self, deadline: float, max_bytes: int, progressbar: bool = False):
        self.deadline, self.max_bytes, self.progressbar = deadline, int(max_bytes), progressbar
        self.started = time.monotonic()

    def __call__(self, url: str, output_file: Any, pooch: Any = None, check_only: bool = False) -> Any:
        import requests

        left = self._left(url)
        with requests.get(url, stream=True, timeout=(min(left, _READ_TIMEOUT), min(left, _READ_TIMEOUT))) as response:
            if check_only:
                return response.ok
            response.raise_for_status()
            declared = int(response.headers.get("content-length") or 0)
            if declared > self.max_bytes:
                raise self._too_big(url, declared)
            opened = not hasattr(output_file, "write")
            out = open(output_file, "w+b") if opened else output_file
            bar = _bar(declared, url) if self.progressbar else None
            try:
                self._copy(url, response.raw, out, bar)
            finally:
                if opened:
                    out.close()
                if bar is not None:
                    bar.close()
        return None

    def _copy(self, url: str, raw: Any, out: Any, bar: Any) -> None:
        total = 0
        while True:
            chunk = (
                raw.read1(1 << 16, decode_content=True)
                if hasattr(raw, "read1")
                else raw.read(_OLD_URLLIB3_READ, decode_content=True)
            )
            if not chunk:
                return
            total += len(chunk)
            if total > self.max_bytes:
                raise self._too_big(url, total)
            self._left(url)
            out.write(chunk)
            if bar is not None:
                bar.update(len(chunk))

    def _left(self, url: str) -> float:
        left = self.deadline - (time.monotonic() - self.started)
        if left <= 0:
            raise GoldenError(
                f"download of {url} did not finish within {self.deadline:g} s (the server is too slow or "
                f"never ends the body); nothing was cached. Set {ENV_DEADLINE} to allow longer"
            )
        return left

    def _too_big(self, url: str, size: int) -> GoldenError:
        return GoldenError(
            f"download of {url} exceeds {self.max_bytes} bytes (got {size}); a golden is never that large, "
            f"nothing was cached. Set {ENV_MAX_BYTES} if it really is"
        )


def copy_from_folder(url: str, output_file: Any, pooch: Any, check_only: bool = False) -> Any:
    """A pooch downloader for local folders: copies, so pooch still verifies and caches."""
    src = Path(url)
    if check_only:
        return src.is_file()
    if hasattr(output_file, "write"):
        with open(src, "rb") as fh:
            shutil.copyfileobj(fh, output_file)
    else:
        shutil.copyfile(src, output_file)
    return None


def _bar(total: int, url: str) -> Any:
    from tqdm import tqdm

    name = url.rsplit("/", 1)[-1]
    return tqdm(total=total or None, desc=name, unit="B", unit_scale=True, file=sys.stderr, leave=False)


def env_number(name: str, default: float) -> float:
    value = os.environ.get(name)
    if not value:
        return default
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if number <= 0:
        raise GoldenError(f"{name}={value!r} must be a positive number")
    return number
