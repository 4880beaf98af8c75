"""The byte sink every checkpoint write goes through: buffered writes and kernel-side range copies.

Why a room of its own: ``_write_all`` and ``_copy_range`` are the only two places bytes reach a
file, so a test injects a full disk here and every writer (``torch.save``'s file object, the
carry-over archive, the backup copy) sees it.
"""

from __future__ import annotations

import errno
import functools
import os
import sys
from typing import Any

__all__ = ["Out"]

_BUFFER = 1 << 20


def _write_all(fd: int, data: Any) -> None:
    """``os.write`` until done (the kernel may write less, e.g. >2 GiB per call on Linux).

    Every byte of every checkpoint this module writes goes through here or ``_copy_range``:
    the one place a test injects a full disk.
    """
    view = memoryview(data).cast("B")
    while view.nbytes:
        written = os.write(fd, view)
        view = view[written:]


def _copy_range(src_fd: int, dst_fd: int, offset: int, count: int) -> None:
    """Copy ``count`` bytes at ``offset`` of ``src_fd`` to ``dst_fd``'s position, in the kernel if possible."""
    if count and _copy_file_range_works():
        try:
            while count:
                n = os.copy_file_range(src_fd, dst_fd, min(count, 1 << 30), offset)
                if n == 0:
                    raise EOFError
                offset += n
                count -= n
        except OSError as exc:
            # Not supported for this pair of files: finish with read/write below.
            if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EBADF):
                raise
        except EOFError:
            raise OSError(errno.EIO, f"source ended {count} bytes early while copying a tensor record") from None
    while count:
        chunk = os.pread(src_fd, min(count, _BUFFER), offset)
        if not chunk:
            raise OSError(errno.EIO, f"source ended {count} bytes early while copying a tensor record")
        _write_all(dst_fd, chunk)
        offset += len(chunk)
        count -= len(chunk)


@functools.lru_cache(maxsize=1)
def _copy_file_range_works() -> bool:
    return hasattr(os, "copy_file_range") and sys.platform.startswith("linux")


class Out:
    """A write-only, position-tracking, buffered sink on a raw fd (also torch.save's file object).

    ``interrupted``: a Ctrl-C / SIGTERM raised inside ``write``. torch's C++ archive writer calls
    ``write`` and does not pass that exception on (it fails later with "unexpected pos", or not at
    all), so the writer re-raises it from here (``raise_if_interrupted``): an interrupted write ends
    as an interrupt (exit 130 / 143), never as a write error or a finished file.
    """

    def __init__(self, fd: int):
        self.fd = fd
        self.pos = 0
        self._buf = bytearray()
        self.interrupted: KeyboardInterrupt | None = None

    def raise_if_interrupted(self) -> None:
        if self.interrupted is not None:
            raise self.interrupted

    def write(self, data: Any) -> int:
        try:
            return self._write(data)
        except KeyboardInterrupt as exc:
            self.interrupted = exc
            raise

    def _write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        n = view.nbytes
        if n >= _BUFFER:
            self.flush()
            _write_all(self.fd, view)
        else:
            self._buf += view
            if len(self._buf) >= _BUFFER:
                self.flush()
        self.pos += n
        return n

    def copy_from(self, src_fd: int, offset: int, count: int) -> None:
        self.flush()
        _copy_range(src_fd, self.fd, offset, count)
        self.pos += count

    def flush(self) -> None:
        if self._buf:
            _write_all(self.fd, self._buf)
            self._buf = bytearray()
