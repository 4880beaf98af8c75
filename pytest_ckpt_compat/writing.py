"""Atomic checkpoint writes, and a fast path that carries tensor records over unchanged.

Why atomic: an upgrade often rewrites a user's only copy of a checkpoint. The new file is written
to a temp file in the same folder, fsynced, then ``os.replace``-d over the destination, so a crash,
a full disk or a Ctrl-C leaves either the old file or the new one, never half of each.

Why carry-over: an upgrade edits a few small dicts; re-serialising gigabytes of weights would cost
a full read, a full write and the RAM to hold them. When the checkpoint was loaded from a
zip-format file with ``torch.load(mmap=True)``, torch slices every storage out of one mapping of
that file at its record's offset. So ``data_ptr() - mapping start`` names the record each storage
came from, and the new archive gets a fresh ``data.pkl`` (pickled by torch's own ``_save``) while
each unchanged record is copied file-to-file (``copy_file_range``), never through Python memory.
The archive layout (names, 64-byte aligned data, zip64 rules) follows torch's writer byte for byte.
Anything we cannot prove takes the plain path, ``torch.save``: a legacy (pre-zip) source, tensors
not mapped from the source, a source in another byte order, or no way to check (Linux
``/proc/self/pagemap``) that a mapped page was not modified in place by a migration.
"""
from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import hashlib
import io
import logging
import mmap
import os
import pickle
import secrets
import struct
import sys
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, NamedTuple, Union

import torch

try:  # POSIX only; elsewhere stale temp files are recognised by age instead of by lock.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["backup", "clean_stale_temp_files", "save_checkpoint"]

_log = logging.getLogger(__name__)

TEMP_MARKER = ".ckpt-compat-tmp-"
BACKUP_SUFFIX = ".bak"
_NAME_KEEP = 100  # chars of the destination name kept in a temp name (NAME_MAX is 255)
_STALE_AGE_WITHOUT_LOCKS = 3600.0  # seconds; only where flock is unavailable
_U32 = 0xFFFFFFFF
_BUFFER = 1 << 20
_PAGE = mmap.PAGESIZE
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_BINARY = getattr(os, "O_BINARY", 0)

PathLike = Union[str, "os.PathLike[str]"]


class _WriteReport(NamedTuple):
    """How a checkpoint was written: for tests and benchmarks, never needed by callers."""

    mode: str  # "carry-over" or "plain"
    copied_records: int
    new_records: int
    reason: str  # why the plain path was taken ("" for carry-over)


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def save_checkpoint(checkpoint: Any, dest: PathLike, *, source: PathLike | None = None) -> None:
    """Write ``checkpoint`` to ``dest`` atomically.

    ``source``: the zip-format file the checkpoint was loaded from with ``mmap=True``; its tensor
    records are copied over instead of re-serialised. Without it (or when that cannot be proven
    safe) the checkpoint is written with ``torch.save``. Either way the result loads with
    ``torch.load(weights_only=True)`` exactly as ``torch.save``'s output would. On any failure the
    temp file is removed and ``dest`` is untouched; the original exception propagates.
    """
    _save_checkpoint(checkpoint, dest, source=source)


def backup(path: PathLike, *, overwrite: bool = False) -> Path:
    """Copy ``NAME`` to ``NAME.bak`` (suffix appended) atomically; returns the backup's path.

    Refuses (``FileExistsError``) to replace an existing, different backup unless
    ``overwrite=True``: the backup of a first upgrade is the only copy of the original, a second
    run must not clobber it. An existing backup with the same bytes is kept and returned, so a run
    killed after its backup can simply be run again. Mode and timestamps are kept, so the backup
    looks like the file it preserves.
    """
    src = Path(os.fspath(path))
    bak = src.with_name(src.name + BACKUP_SUFFIX)
    with open(src, "rb") as fin:
        st = os.fstat(fin.fileno())
        if not overwrite and os.path.lexists(bak):
            if _same_bytes(fin.fileno(), st.st_size, bak):
                return bak
            raise FileExistsError(errno.EEXIST, f"a different backup already exists (not overwritten): {bak}", str(bak))
        try:
            with _atomic_output(bak, mode_from=st, no_clobber=not overwrite) as out:
                out.copy_from(fin.fileno(), 0, st.st_size)
                out.flush()
                if os.utime in os.supports_fd:
                    os.utime(out.fd, ns=(st.st_atime_ns, st.st_mtime_ns))
        except FileExistsError:  # another process made the backup meanwhile
            if _same_bytes(fin.fileno(), st.st_size, bak):
                return bak
            raise
    if os.utime not in os.supports_fd:  # pragma: no cover - platforms without futimens
        os.utime(bak, ns=(st.st_atime_ns, st.st_mtime_ns))
    return bak


def _same_bytes(fd: int, size: int, other: Path) -> bool:
    try:
        with open(other, "rb") as fh:
            if os.fstat(fh.fileno()).st_size != size:
                return False
            offset = 0
            while offset < size:
                mine = os.pread(fd, _BUFFER, offset)
                if not mine or fh.read(len(mine)) != mine:
                    return False
                offset += len(mine)
            return True
    except OSError:
        return False


def clean_stale_temp_files(folder: PathLike, *, name: str | None = None) -> list[Path]:
    """Remove temp files that a killed earlier write left in ``folder``; returns what was removed.

    Only *stale* ones go: a live writer holds an exclusive ``flock`` on its temp file until the
    rename, so a concurrent upgrade's temp file is left alone. ``name`` limits the sweep to temp
    files of one destination name.
    """
    prefix = f".{name[:_NAME_KEEP]}{TEMP_MARKER}" if name is not None else None
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return removed
    for entry in entries:
        if not entry.name.startswith(".") or TEMP_MARKER not in entry.name:
            continue
        if prefix is not None and not entry.name.startswith(prefix):
            continue
        with contextlib.suppress(OSError):
            if entry.is_file(follow_symlinks=False) and _remove_if_stale(entry.path):
                removed.append(Path(entry.path))
    return removed


@contextlib.contextmanager
def exclusive(path: PathLike) -> Iterator[Path]:
    """Hold an exclusive ``flock`` on the checkpoint file ``path`` names for the ``with`` block.

    For in-place upgrades (load → backup → write): two processes upgrading the same file must not
    interleave, or the second backs up the first one's output. A waiter that gets the lock after
    the holder replaced the file finds the path naming a new inode and locks that one instead, so
    it then loads the upgraded file. Readers that do not lock (torch.load, Lightning) are unaffected.
    A missing file is not locked: the caller's load reports it.
    """
    target = _resolve_dest(path)
    if fcntl is None:  # pragma: no cover
        yield target
        return
    while True:
        try:
            fd = os.open(target, os.O_RDONLY | _O_CLOEXEC)
        except FileNotFoundError:
            yield target
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                current = os.path.samestat(os.stat(target), os.fstat(fd))
            except FileNotFoundError:
                current = False
            if current:
                yield target
                return
        finally:
            os.close(fd)


# --------------------------------------------------------------------------------------------
# Atomic output
# --------------------------------------------------------------------------------------------


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


class _Out:
    """A write-only, position-tracking, buffered sink on a raw fd (also torch.save's file object)."""

    def __init__(self, fd: int):
        self.fd = fd
        self.pos = 0
        self._buf = bytearray()

    def write(self, data: Any) -> int:
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


@contextlib.contextmanager
def _atomic_output(
    dest: Path, *, mode_from: os.stat_result | None = None, no_clobber: bool = False
) -> Iterator[_Out]:
    """Yield a sink on a locked temp file beside ``dest``; on success fsync it and rename it over ``dest``."""
    folder = dest.parent
    tmp, fd = _create_temp(dest)
    try:
        out = _Out(fd)
        yield out
        out.flush()
        _copy_mode(fd, tmp, mode_from if mode_from is not None else _stat_or_none(dest))
        os.fsync(fd)
        if os.name == "nt":  # pragma: no cover - Windows cannot rename an open file
            os.close(fd)
            fd = -1
        if no_clobber:
            _rename_no_clobber(tmp, dest)
        else:
            os.replace(tmp, dest)
        _fsync_dir(folder)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    finally:
        if fd >= 0:
            os.close(fd)  # closing releases the lock, after the rename


def _create_temp(dest: Path) -> tuple[Path, int]:
    """Create and lock ``.<name>.ckpt-compat-tmp-<random>`` beside ``dest``.

    Created with O_EXCL and the usual 0o666 & ~umask; the lock tells ``clean_stale_temp_files``
    (ours or another process's) that the file is in use. If a sweeper removed the file between
    our create and our lock, we notice (the path no longer names our inode) and start over.
    """
    for _ in range(100):
        tmp = dest.parent / f".{dest.name[:_NAME_KEEP]}{TEMP_MARKER}{secrets.token_hex(8)}"
        try:
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | _O_CLOEXEC | _O_BINARY, 0o666)
        except FileExistsError:
            continue
        if fcntl is None:  # pragma: no cover
            return tmp, fd
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            ours = os.path.samestat(os.stat(tmp, follow_symlinks=False), os.fstat(fd))
        except FileNotFoundError:
            ours = False
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        if ours:
            return tmp, fd
        os.close(fd)
    raise FileExistsError(errno.EEXIST, "could not create a unique temp file", str(dest.parent))


def _remove_if_stale(path: str) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY | _O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return False
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return False  # a live writer holds it
        else:  # pragma: no cover
            import time

            if time.time() - os.fstat(fd).st_mtime < _STALE_AGE_WITHOUT_LOCKS:
                return False
        try:
            if not os.path.samestat(os.stat(path, follow_symlinks=False), os.fstat(fd)):
                return False
        except FileNotFoundError:
            return False
        if os.name == "nt":  # pragma: no cover
            os.close(fd)
            fd = -1
        os.unlink(path)
        return True
    finally:
        if fd >= 0:
            os.close(fd)


def _stat_or_none(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None


def _copy_mode(fd: int, tmp: Path, st: os.stat_result | None) -> None:
    """Give the new file the permission bits of the one it replaces (an upgrade must not change them)."""
    if st is None:
        return
    mode = st.st_mode & 0o7777
    if hasattr(os, "fchmod"):
        os.fchmod(fd, mode)
    else:  # pragma: no cover
        os.chmod(tmp, mode)


def _rename_no_clobber(tmp: Path, dest: Path) -> None:
    """Rename that fails if ``dest`` exists, without a check-then-rename race where links work."""
    try:
        os.link(tmp, dest)
    except FileExistsError:
        raise FileExistsError(errno.EEXIST, f"refusing to overwrite existing file: {dest}", str(dest)) from None
    except OSError:  # no hard links on this filesystem
        if os.path.lexists(dest):
            raise FileExistsError(errno.EEXIST, f"refusing to overwrite existing file: {dest}", str(dest)) from None
        os.replace(tmp, dest)
        return
    os.unlink(tmp)


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (best effort where directories cannot be fsynced)."""
    if os.name == "nt":  # pragma: no cover
        return
    try:
        dfd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EBADF, errno.EROFS):
            raise
    finally:
        os.close(dfd)


def _resolve_dest(dest: PathLike) -> Path:
    """Write through a symlink (Lightning's ``last.ckpt`` may be one) instead of replacing the link."""
    path = Path(os.fspath(dest))
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    return path


# --------------------------------------------------------------------------------------------
# Writing: plain and carry-over
# --------------------------------------------------------------------------------------------


def _save_checkpoint(checkpoint: Any, dest: PathLike, *, source: PathLike | None = None) -> _WriteReport:
    dest_path = _resolve_dest(dest)
    clean_stale_temp_files(dest_path.parent, name=dest_path.name)
    plan, reason = (None, "no source given") if source is None else _carry_over_plan(checkpoint, source)
    try:
        with _atomic_output(dest_path) as out:
            if plan is None:
                torch.save(checkpoint, out)
                report = _WriteReport("plain", 0, 0, reason)
            else:
                _write_archive(plan, out)
                report = _WriteReport("carry-over", plan.copied, plan.new, "")
    finally:
        if plan is not None:
            os.close(plan.source_fd)
    if report.mode == "plain":
        _log.debug("wrote %s with torch.save (%s)", dest_path, reason)
    else:
        _log.debug("wrote %s: %d tensor records carried over, %d new", dest_path, report.copied_records, report.new_records)
    return report


@dataclass
class _SourceRecord:
    name: str  # without the archive prefix, e.g. "data/3"
    data_offset: int
    size: int
    crc: int


@dataclass
class _Plan:
    source_fd: int
    head: list = field(default_factory=list)  # (name, bytes): data.pkl, .format_version, ...
    data: list = field(default_factory=list)  # (name, _SourceRecord | UntypedStorage)
    trailer: list = field(default_factory=list)  # (name, bytes | None): None = serialization id
    prefix: str = "archive"
    alignment: int = 64
    compute_crc: bool = True
    copied: int = 0
    new: int = 0


class _RecordCollector:
    """Stands in for ``torch._C.PyTorchFileWriter`` so torch's own ``_save`` decides the records."""

    def __init__(self) -> None:
        self.records: list[tuple[str, Any]] = []

    def write_record(self, name: str, data: Any, nbytes: int) -> None:
        if isinstance(data, str):
            data = data.encode("utf-8")
        elif isinstance(data, (bytes, bytearray)):
            data = bytes(data)
        self.records.append((name, data))


def _carry_over_plan(checkpoint: Any, source: PathLike) -> tuple[_Plan | None, str]:
    """What to write, or ``(None, why not)`` when the plain path must be used."""
    try:
        fd = os.open(os.fspath(source), os.O_RDONLY | _O_CLOEXEC | _O_BINARY)
    except OSError as exc:
        return None, f"cannot open source: {exc}"
    try:
        plan, reason = _build_plan(checkpoint, fd, os.fspath(source))
    except Exception as exc:  # anything unforeseen: torch.save is always correct
        plan, reason = None, f"{type(exc).__name__}: {exc}"
    if plan is None:
        os.close(fd)
    return plan, reason


def _build_plan(checkpoint: Any, fd: int, source: str) -> tuple[_Plan | None, str]:
    st = os.fstat(fd)
    if os.pread(fd, 4, 0) != b"PK\x03\x04":
        return None, "source is not a zip-format torch file (legacy or not torch)"
    segments = _mapped_segments(st, os.path.realpath(source))
    if not segments:
        return None, "no tensor of the checkpoint is memory-mapped from the source"
    template = _archive_template()
    if template is None:
        return None, "this torch writes records we do not know"
    prefix, trailer_names = template
    if getattr(torch.serialization._serialization_tls, "skip_data", False):
        return None, "torch.serialization.skip_data is active"

    records, byteorder = _source_records(fd)
    if byteorder != sys.byteorder:
        return None, f"source byte order is {byteorder}, this machine is {sys.byteorder}"
    by_offset = {rec.data_offset: rec for rec in records.values()}

    collector = _RecordCollector()
    torch.serialization._save(checkpoint, collector, pickle, torch.serialization.DEFAULT_PROTOCOL, False)

    plan = _Plan(source_fd=fd, prefix=prefix)
    plan.alignment = int(getattr(torch.serialization, "_get_storage_alignment", lambda: 64)())
    plan.compute_crc = bool(getattr(torch.serialization, "get_crc32_options", lambda: True)())
    candidates: list[tuple[int, int, str, _SourceRecord | None, Any]] = []
    for name, payload in collector.records:
        if not name.startswith("data/"):
            if not isinstance(payload, bytes):
                return None, f"unexpected non-bytes record {name}"
            plan.head.append((name, payload))
            continue
        storage = payload
        if not isinstance(storage, torch.UntypedStorage) or storage.device.type != "cpu":
            return None, f"record {name} is not a CPU storage"
        nbytes = storage.nbytes()
        record = None
        if nbytes:
            offset = _file_offset(segments, storage.data_ptr(), nbytes)
            rec = by_offset.get(offset) if offset is not None else None
            if rec is not None and rec.size == nbytes:
                record = rec
        candidates.append((storage.data_ptr(), nbytes, name, record, storage))
    if not any(rec is not None for *_, rec, _s in candidates):
        return None, "no tensor of the checkpoint is memory-mapped from the source"
    if not _pagemap_works():
        return None, "cannot check for in-place edits of mapped tensors (/proc/self/pagemap)"
    dirty = _modified_ranges([(ptr, n) for ptr, n, _name, rec, _s in candidates if rec is not None])
    for ptr, nbytes, name, record, storage in candidates:
        if record is not None and (ptr, nbytes) not in dirty:
            plan.data.append((name, record))
            plan.copied += 1
        else:
            plan.data.append((name, storage))
            plan.new += 1
    plan.trailer = [(n, data) for n, data in trailer_names]
    return plan, ""


def _source_records(fd: int) -> tuple[dict[str, _SourceRecord], str]:
    """Record table of the source archive (stored records only) and its byte order."""
    records: dict[str, _SourceRecord] = {}
    with open(fd, "rb", closefd=False) as fh, zipfile.ZipFile(fh) as archive:
        infos = archive.infolist()
        byteorder = "little"  # what torch.load assumes for files without the record
        for info in infos:
            _, _, name = info.filename.partition("/")
            if name == "byteorder":
                byteorder = archive.read(info).decode("ascii", "replace")
            if info.compress_type != zipfile.ZIP_STORED or not name.startswith("data/"):
                continue
            header = os.pread(fd, 30, info.header_offset)
            if len(header) != 30 or header[:4] != b"PK\x03\x04":
                continue
            name_len, extra_len = struct.unpack("<HH", header[26:30])
            data_offset = info.header_offset + 30 + name_len + extra_len
            records[name] = _SourceRecord(name, data_offset, info.file_size, info.CRC)
    return records, byteorder


# --------------------------------------------------------------------------------------------
# Which storages are slices of the source mapping, and are they still the file's bytes?
# --------------------------------------------------------------------------------------------


def _mapped_segments(st: os.stat_result, realpath: str) -> list[tuple[int, int, int]]:
    """``(start, end, file_offset)`` of this process's mappings of the file ``st`` describes."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return []
    dev = (os.major(st.st_dev), os.minor(st.st_dev))
    found = []
    for line in lines:
        parts = line.split(None, 5)
        if len(parts) < 5:
            continue
        try:
            if int(parts[4]) != st.st_ino:
                continue
            major, minor = (int(x, 16) for x in parts[3].split(":"))
            start, end = (int(x, 16) for x in parts[0].split("-"))
            offset = int(parts[2], 16)
        except ValueError:
            continue
        path = parts[5] if len(parts) > 5 else ""
        if (major, minor) != dev and path != realpath:  # overlay filesystems report other devices
            continue
        found.append((start, end, offset))
    found.sort()
    merged: list[tuple[int, int, int]] = []
    for start, end, offset in found:  # one mapping may show as several lines
        if merged and merged[-1][1] == start and merged[-1][2] + (merged[-1][1] - merged[-1][0]) == offset:
            merged[-1] = (merged[-1][0], end, merged[-1][2])
        else:
            merged.append((start, end, offset))
    return merged


def _file_offset(segments: list[tuple[int, int, int]], ptr: int, nbytes: int) -> int | None:
    for start, end, offset in segments:
        if start <= ptr and ptr + nbytes <= end:
            return ptr - start + offset
    return None


@functools.lru_cache(maxsize=1)
def _pagemap_works() -> bool:
    """Self-test: a read page of a private file mapping must read as clean, a written one as dirty."""
    if not os.path.exists("/proc/self/pagemap"):
        return False
    try:
        with tempfile.TemporaryDirectory(prefix="ckpt-compat-probe-") as folder:
            probe = os.path.join(folder, "probe")
            with open(probe, "wb") as fh:
                fh.write(b"\0" * (2 * _PAGE))
            storage = torch.UntypedStorage.from_file(probe, False, 2 * _PAGE)
            base = storage.data_ptr()
            _ = storage[0]
            storage[_PAGE] = 1
            dirty = _modified_ranges([(base, _PAGE), (base + _PAGE, _PAGE)])
            del storage
        return dirty == {(base + _PAGE, _PAGE)}
    except Exception:
        return False


def _modified_ranges(ranges: list[tuple[int, int]]) -> set[tuple[int, int]]:
    """Which ``(ptr, nbytes)`` ranges of private file mappings hold a page written in this process.

    /proc/self/pagemap, 8 bytes a page: bit 63 present, 62 swapped, 61 file-backed. A page a
    migration wrote to (copy-on-write) is present and anonymous, or swapped; such a storage's
    bytes are no longer the file's record, so it is written from memory instead of copied.
    """
    dirty: set[tuple[int, int]] = set()
    if not ranges:
        return dirty
    pm = os.open("/proc/self/pagemap", os.O_RDONLY | _O_CLOEXEC)
    try:
        for ptr, nbytes in ranges:
            first, last = ptr // _PAGE, (ptr + nbytes - 1) // _PAGE
            page = first
            while page <= last:
                count = min(last - page + 1, 1 << 20)
                raw = os.pread(pm, count * 8, page * 8)
                if len(raw) != count * 8:
                    raise OSError(errno.EIO, "short read from /proc/self/pagemap")
                entries = torch.frombuffer(bytearray(raw), dtype=torch.int64)
                present = entries < 0
                swapped = ((entries >> 62) & 1).bool()
                file_backed = ((entries >> 61) & 1).bool()
                if bool((swapped | (present & ~file_backed)).any()):
                    dirty.add((ptr, nbytes))
                    break
                page += count
    finally:
        os.close(pm)
    return dirty


# --------------------------------------------------------------------------------------------
# The zip archive, laid out exactly as torch's PyTorchStreamWriter (miniz) lays it out
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _archive_template() -> tuple[str, tuple[tuple[str, bytes | None], ...]] | None:
    """Archive prefix and end-of-file records (``version``, serialization id) this torch writes.

    Read off a ``torch.save`` of an empty dict, so a torch that changes them is followed, and one
    that adds records we do not understand switches the fast path off (``None``).
    """
    buffer = io.BytesIO()
    torch.save({}, buffer)
    collector = _RecordCollector()
    torch.serialization._save({}, collector, pickle, torch.serialization.DEFAULT_PROTOCOL, False)
    written_by_save = {name for name, _ in collector.records}
    with zipfile.ZipFile(buffer) as archive:
        infos = archive.infolist()
        prefix = infos[0].filename.partition("/")[0]
        trailer: list[tuple[str, bytes | None]] = []
        for info in infos:
            name = info.filename.partition("/")[2]
            if name in written_by_save:
                continue
            if name == ".data/serialization_id":
                trailer.append((name, None))
            elif name in ("version", ".data/version"):
                trailer.append((name, archive.read(info)))
            else:
                return None
    return prefix, tuple(trailer)


def _write_archive(plan: _Plan, out: _Out) -> None:
    writer = _ZipWriter(out, plan.prefix, plan.alignment, plan.compute_crc)
    for name, payload in plan.head:
        writer.add_bytes(name, payload)
    for name, item in plan.data:
        if isinstance(item, _SourceRecord):
            writer.add_copy(name, plan.source_fd, item.data_offset, item.size, item.crc)
        else:
            writer.add_storage(name, item)
    for name, payload in plan.trailer:
        writer.add_bytes(name, writer.serialization_id() if payload is None else payload)
    writer.finish()


class _ZipWriter:
    """Local header + ``FB`` padding extra (data 64-byte aligned) + data + data descriptor per record,
    then the central directory, zip64 end record, zip64 locator and end record, as miniz writes them."""

    def __init__(self, out: _Out, prefix: str, alignment: int, compute_crc: bool):
        self.out = out
        self.prefix = prefix
        self.alignment = alignment
        self.compute_crc = compute_crc
        self.central: list[bytes] = []
        self.names: list[str] = []
        self.crcs: list[int] = []

    def add_bytes(self, name: str, data: bytes) -> None:
        crc = zlib.crc32(data) if self.compute_crc else 0
        self._begin(name, len(data))
        self.out.write(data)
        self._end(len(data), crc)

    def add_copy(self, name: str, src_fd: int, offset: int, size: int, crc: int) -> None:
        self._begin(name, size)
        self.out.copy_from(src_fd, offset, size)
        self._end(size, crc)

    def add_storage(self, name: str, storage: torch.UntypedStorage) -> None:
        size = storage.nbytes()
        self._begin(name, size)
        crc = 0
        if size:
            # A view of the storage's bytes without numpy (optional for torch); ``storage`` stays alive.
            view = memoryview((ctypes.c_ubyte * size).from_address(storage.data_ptr())).cast("B")
            for start in range(0, size, 64 * _BUFFER):
                chunk = view[start : start + 64 * _BUFFER]
                if self.compute_crc:
                    crc = zlib.crc32(chunk, crc)
                self.out.write(chunk)
        self._end(size, crc)

    def _begin(self, name: str, size: int) -> None:
        full = f"{self.prefix}/{name}".encode("utf-8")
        offset = self.out.pos
        zip64 = b""
        if size >= _U32 or offset >= _U32:
            fields = (struct.pack("<QQ", size, 0) if size >= _U32 else b"") + (
                struct.pack("<Q", offset) if offset >= _U32 else b""
            )
            zip64 = struct.pack("<HH", 1, len(fields)) + fields
        start = offset + 30 + len(full) + len(zip64) + 4
        pad = -start % self.alignment
        extra = zip64 + b"FB" + struct.pack("<H", pad) + b"Z" * pad
        flags = 0x0808 if size else 0x0800  # UTF-8 names; data descriptor follows non-empty data
        self.out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 0, flags, 0, 0, 0, 0, 0, 0, len(full), len(extra)))
        self.out.write(full)
        self.out.write(extra)
        self._current = (full, offset, size, flags)

    def _end(self, size: int, crc: int) -> None:
        full, offset, expected, flags = self._current
        if size != expected:
            raise RuntimeError(f"record {full!r}: wrote {size} bytes, announced {expected}")
        big = size >= _U32 or offset >= _U32
        if size:
            if big:
                self.out.write(struct.pack("<IIQQ", 0x08074B50, crc, size, size))
            else:
                self.out.write(struct.pack("<IIII", 0x08074B50, crc, size, size))
        fields = (struct.pack("<QQ", size, size) if size >= _U32 else b"") + (
            struct.pack("<Q", offset) if offset >= _U32 else b""
        )
        extra = struct.pack("<HH", 1, len(fields)) + fields if fields else b""
        self.central.append(
            struct.pack(
                "<IHHHHHHIIIHHHHHII",
                0x02014B50,
                0,
                0,
                flags,
                0,
                0,
                0,
                crc,
                min(size, _U32),
                min(size, _U32),
                len(full),
                len(extra),
                0,
                0,
                0,
                0,
                min(offset, _U32),
            )
            + full
            + extra
        )
        self.names.append(full.decode("utf-8"))
        if size:
            self.crcs.append(crc)

    def serialization_id(self) -> bytes:
        """40 digits like torch's (a hash of the record names, then of the data CRCs); torch only logs it."""
        names = hashlib.blake2b("\n".join(self.names).encode("utf-8"), digest_size=8).digest()
        crcs = hashlib.blake2b(struct.pack(f"<{len(self.crcs)}I", *self.crcs), digest_size=8).digest()
        return f"{int.from_bytes(names, 'little'):020d}{int.from_bytes(crcs, 'little'):020d}".encode("ascii")

    def finish(self) -> None:
        cd_offset = self.out.pos
        for entry in self.central:
            self.out.write(entry)
        cd_size = self.out.pos - cd_offset
        count = len(self.central)
        zip64_offset = self.out.pos
        self.out.write(struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 0x031E, 0x002D, 0, 0, count, count, cd_size, cd_offset))
        self.out.write(struct.pack("<IIQI", 0x07064B50, 0, zip64_offset, 1))
        self.out.write(
            struct.pack(
                "<IHHHHIIH", 0x06054B50, 0, 0, min(count, 0xFFFF), min(count, 0xFFFF), min(cd_size, _U32), min(cd_offset, _U32), 0
            )
        )
        self.out.flush()
