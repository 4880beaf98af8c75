"""Carry-over: which tensor records of the source can be copied into the new archive unchanged.

Why: an upgrade edits a few small dicts; re-serialising gigabytes of weights would cost a full
read, a full write and the RAM to hold them. When the checkpoint was loaded from a zip-format
file with ``torch.load(mmap=True)``, torch slices every storage out of one mapping of that file at
its record's offset, so ``data_ptr() - mapping start`` names the record each storage came from.
A storage whose pages a migration wrote to (``/proc/self/pagemap``) is written from memory.
Anything we cannot prove returns ``(None, why)`` and the caller takes the plain ``torch.save`` path.
"""

from __future__ import annotations

import errno
import functools
import mmap
import os
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Any

import torch

from .atomic import PathLike, open_regular
from .plaindata import plain_data_pickle
from .tempfiles import _O_CLOEXEC
from .zipformat import RecordCollector, SourceRecord, archive_template, source_records

_PAGE = mmap.PAGESIZE


@dataclass
class Plan:
    source_fd: int
    head: list = field(default_factory=list)  # (name, bytes): data.pkl, .format_version, ...
    data: list = field(default_factory=list)  # (name, SourceRecord | UntypedStorage)
    trailer: list = field(default_factory=list)  # (name, bytes | None): None = serialization id
    prefix: str = "archive"
    alignment: int = 64
    compute_crc: bool = True
    copied: int = 0
    new: int = 0


def carry_over_plan(checkpoint: Any, source: PathLike) -> tuple[Plan | None, str]:
    """What to write, or ``(None, why not)`` when the plain path must be used."""
    try:
        fd = open_regular(source)
    except OSError as exc:
        return None, f"cannot open source: {exc}"
    try:
        plan, reason = _build_plan(checkpoint, fd, os.fspath(source))
    except Exception as exc:  # anything unforeseen: torch.save is always correct
        plan, reason = None, f"{type(exc).__name__}: {exc}"
    if plan is None:
        os.close(fd)
    return plan, reason


def _build_plan(checkpoint: Any, fd: int, source: str) -> tuple[Plan | None, str]:
    st = os.fstat(fd)
    if os.pread(fd, 4, 0) != b"PK\x03\x04":
        return None, "source is not a zip-format torch file (legacy or not torch)"
    segments = _mapped_segments(st, os.path.realpath(source))
    if not segments:
        return None, "no tensor of the checkpoint is memory-mapped from the source"
    template = archive_template()
    if template is None:
        return None, "this torch writes records we do not know"
    prefix, trailer_names = template
    if getattr(torch.serialization._serialization_tls, "skip_data", False):
        return None, "torch.serialization.skip_data is active"

    records, byteorder = source_records(fd)
    if byteorder != sys.byteorder:
        return None, f"source byte order is {byteorder}, this machine is {sys.byteorder}"
    by_offset = {rec.data_offset: rec for rec in records.values()}

    collector = RecordCollector()
    torch.serialization._save(checkpoint, collector, plain_data_pickle, torch.serialization.DEFAULT_PROTOCOL, False)

    plan = Plan(source_fd=fd, prefix=prefix)
    plan.alignment = int(getattr(torch.serialization, "_get_storage_alignment", lambda: 64)())
    plan.compute_crc = bool(getattr(torch.serialization, "get_crc32_options", lambda: True)())
    candidates: list[tuple[int, int, str, SourceRecord | None, Any]] = []
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
