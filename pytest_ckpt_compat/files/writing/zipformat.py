"""The zip archive torch writes, laid out exactly as its PyTorchStreamWriter (miniz) lays it out.

Why our own writer: the carry-over path must put copied tensor records and fresh ones into one
archive that ``torch.load`` reads as if ``torch.save`` had written it (names, 64-byte aligned data,
zip64 rules, data descriptors, the serialization id). Reading a source's record table is here too.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import io
import os
import pickle
import struct
import zipfile
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from .sink import _BUFFER, Out

if TYPE_CHECKING:  # pragma: no cover
    from .carryover import Plan

_U32 = 0xFFFFFFFF
_BYTEORDER_MAX = 16  # "little" or "big"; anything longer is not a byte order


@dataclass
class SourceRecord:
    name: str  # without the archive prefix, e.g. "data/3"
    data_offset: int
    size: int
    crc: int


class RecordCollector:
    """Stands in for ``torch._C.PyTorchFileWriter`` so torch's own ``_save`` decides the records."""

    def __init__(self) -> None:
        self.records: list[tuple[str, Any]] = []

    def write_record(self, name: str, data: Any, nbytes: int) -> None:
        if isinstance(data, str):
            data = data.encode("utf-8")
        elif isinstance(data, (bytes, bytearray)):
            data = bytes(data)
        self.records.append((name, data))


def source_records(fd: int) -> tuple[dict[str, SourceRecord], str]:
    """Record table of the source archive (stored records only) and its byte order."""
    records: dict[str, SourceRecord] = {}
    with open(fd, "rb", closefd=False) as fh, zipfile.ZipFile(fh) as archive:
        infos = archive.infolist()
        byteorder = "little"  # what torch.load assumes for files without the record
        for info in infos:
            _, _, name = info.filename.partition("/")
            if name == "byteorder":
                with archive.open(info) as record:  # bounded: a compressed record may inflate to gigabytes
                    byteorder = record.read(_BYTEORDER_MAX + 1).decode("ascii", "replace")
            if info.compress_type != zipfile.ZIP_STORED or not name.startswith("data/"):
                continue
            header = os.pread(fd, 30, info.header_offset)
            if len(header) != 30 or header[:4] != b"PK\x03\x04":
                continue
            name_len, extra_len = struct.unpack("<HH", header[26:30])
            data_offset = info.header_offset + 30 + name_len + extra_len
            records[name] = SourceRecord(name, data_offset, info.file_size, info.CRC)
    return records, byteorder


@functools.lru_cache(maxsize=1)
def archive_template() -> tuple[str, tuple[tuple[str, bytes | None], ...]] | None:
    """Archive prefix and end-of-file records (``version``, serialization id) this torch writes.

    Read off a ``torch.save`` of an empty dict, so a torch that changes them is followed, and one
    that adds records we do not understand switches the fast path off (``None``).
    """
    buffer = io.BytesIO()
    torch.save({}, buffer)
    collector = RecordCollector()
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


def write_archive(plan: Plan, out: Out) -> None:
    writer = _ZipWriter(out, plan.prefix, plan.alignment, plan.compute_crc)
    for name, payload in plan.head:
        writer.add_bytes(name, payload)
    for name, item in plan.data:
        if isinstance(item, SourceRecord):
            writer.add_copy(name, plan.source_fd, item.data_offset, item.size, item.crc)
        else:
            writer.add_storage(name, item)
    for name, payload in plan.trailer:
        writer.add_bytes(name, writer.serialization_id() if payload is None else payload)
    writer.finish()


class _ZipWriter:
    """Local header + ``FB`` padding extra (data 64-byte aligned) + data + data descriptor per record,
    then the central directory, zip64 end record, zip64 locator and end record, as miniz writes them."""

    def __init__(self, out: Out, prefix: str, alignment: int, compute_crc: bool):
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
        full = f"{self.prefix}/{name}".encode()
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
        self.out.write(
            struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 0x031E, 0x002D, 0, 0, count, count, cd_size, cd_offset)
        )
        self.out.write(struct.pack("<IIQI", 0x07064B50, 0, zip64_offset, 1))
        self.out.write(
            struct.pack(
                "<IHHHHIIH",
                0x06054B50,
                0,
                0,
                min(count, 0xFFFF),
                min(count, 0xFFFF),
                min(cd_size, _U32),
                min(cd_offset, _U32),
                0,
            )
        )
        self.out.flush()
