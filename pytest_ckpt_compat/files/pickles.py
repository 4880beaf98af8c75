"""Checks on a checkpoint's bytes before (and instead of) running torch's unpickler on them.

Why: ``torch.load`` trusts the container. A text file that starts with ``c`` reads as a pickle
GLOBAL and would be reported as unsafe; a tiny zip can hold a record that inflates to gigabytes
(torch reads ``byteorder`` and ``data.pkl`` whole). Everything here reads the file without
executing it: the zip directory, and pickle opcodes through ``pickletools``.
"""

from __future__ import annotations

import io
import math
import os
import pickle
import pickletools
import sys
import zipfile
import zlib
from typing import IO, Any, BinaryIO

from ..core.errors import CorruptCheckpoint, NoTorchMagic

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C  # the first pickle of a legacy (pre-zip) torch file
MAX_COMPRESSED_RECORD = 16 << 20  # torch stores records uncompressed; a compressed one may inflate this far
MAX_PICKLE = 1 << 30  # data.pkl holds the structure, not the tensors


def check_archive(fh: BinaryIO, name: str) -> tuple[str, int]:
    """Validate a zip checkpoint's directory; returns ``(data.pkl record name, its pickle protocol)``.

    Refuses (``CorruptCheckpoint``) duplicate record names, compressed records larger than
    ``MAX_COMPRESSED_RECORD``, records that end beyond the file, and a missing or huge ``data.pkl``.
    """
    size = os.fstat(fh.fileno()).st_size
    try:
        with zipfile.ZipFile(fh) as archive:
            infos = archive.infolist()
            seen: set[str] = set()
            pkl = None
            for info in infos:
                if info.filename in seen:
                    raise CorruptCheckpoint(f"{name}: the archive holds the record {info.filename!r} twice")
                seen.add(info.filename)
                if info.compress_type != zipfile.ZIP_STORED and info.file_size > MAX_COMPRESSED_RECORD:
                    raise CorruptCheckpoint(
                        f"{name}: record {info.filename!r} is compressed and would inflate to {info.file_size} bytes "
                        "(torch never compresses records; a zip bomb?)"
                    )
                if info.compress_type == zipfile.ZIP_STORED and info.header_offset + info.file_size > size:
                    raise CorruptCheckpoint(
                        f"{name}: record {info.filename!r} ends beyond the end of the file (truncated?)"
                    )
                if info.filename.endswith("/data.pkl") and info.filename.count("/") == 1:
                    pkl = info
            if pkl is None:
                raise CorruptCheckpoint(
                    f"{name} is not a readable torch checkpoint: a zip file without a data.pkl record"
                )
            if pkl.file_size > MAX_PICKLE:
                raise CorruptCheckpoint(f"{name}: data.pkl declares {pkl.file_size} bytes; refusing to read it")
            with archive.open(pkl) as data:
                head = data.read(2)
            with archive.open(pkl) as data:
                check_pickles(data, name, 1)
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        zlib.error,
        EOFError,
        ValueError,
        OverflowError,
        NotImplementedError,
        OSError,
    ) as exc:
        raise CorruptCheckpoint(
            f"{name} is not a readable torch checkpoint (truncated or corrupt?): {type(exc).__name__}: {exc}"
        ) from None
    return pkl.filename, (head[1] if len(head) == 2 and head[0] == pickle.PROTO[0] else 2)


def check_legacy(fd: int, name: str) -> int:
    """A non-zip file must start with the pickled torch magic number; returns its pickle protocol.

    Without this a text file starting with ``c`` (a pickle GLOBAL opcode) would be reported as
    an unsafe pickle instead of as what it is: not a torch checkpoint (maybe a file of another format).
    """
    protocol: Any = 0
    try:
        for opcode, arg, _pos in pickletools.genops(io.BytesIO(os.pread(fd, 64, 0))):  # noqa: B007
            if opcode.name == "PROTO":
                protocol = arg
            elif opcode.name != "FRAME":
                if opcode.name in ("LONG1", "LONG", "LONG4", "INT") and arg == MAGIC_NUMBER:
                    with open(fd, "rb", closefd=False) as fh:  # magic, version, sys info, the checkpoint
                        check_pickles(fh, name, 4)
                    return protocol
                break
    except CorruptCheckpoint:
        raise
    except Exception:  # noqa: BLE001 - not a pickle at all
        pass
    raise NoTorchMagic(
        f"{name} is not a readable torch checkpoint: "
        "neither a zip archive nor a legacy torch file (no torch magic number)"
    )


def _unprintable(value: int) -> bool:
    """An int longer than ``sys.get_int_max_str_digits()`` digits: ``str()`` of it raises ``ValueError``."""
    digits = getattr(sys, "get_int_max_str_digits", lambda: 0)()
    return bool(digits) and abs(value).bit_length() > digits * math.log2(10)


def check_pickles(stream: IO[bytes], name: str, count: int) -> None:
    """Parse ``count`` pickles from ``stream`` (opcodes only, nothing runs); refuse what would blow up memory.

    The C unpickler sizes its memo by the largest index a PUT names, so ``LONG_BINPUT 2**31`` costs
    16 GiB for a few bytes of input; a pickle names its memo entries in order, so an index beyond
    the number of opcodes read is refused. Lengths that run past the data fail the parse here. An
    integer too long to print (a 5,000-digit "version") is refused here, before any message needs it.
    """
    for _ in range(count):
        ops = 0
        try:
            for opcode, arg, _pos in pickletools.genops(stream):
                ops += 1
                if opcode.name in ("PUT", "BINPUT", "LONG_BINPUT") and int(arg or 0) > ops:
                    raise CorruptCheckpoint(
                        f"{name}: the pickle stores memo entry {arg} after {ops} opcodes (a memory bomb?)"
                    )
                if opcode.name in ("LONG1", "LONG4") and isinstance(arg, int) and _unprintable(arg):
                    raise CorruptCheckpoint(
                        f"{name}: the pickle holds an integer of {arg.bit_length()} bits, too long for Python to "
                        "print or compare as text (a version or key no Lightning wrote)"
                    )
        except CorruptCheckpoint:
            raise
        except Exception as exc:  # noqa: BLE001 - not a well-formed pickle
            raise CorruptCheckpoint(f"{name} is not a readable torch checkpoint: malformed pickle ({exc})") from None
