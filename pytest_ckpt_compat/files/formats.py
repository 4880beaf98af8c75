"""Name the format of a file that is not a torch checkpoint, from its first bytes.

Why: ``.ckpt`` is also the suffix of MindSpore checkpoints, and a clone without
Git LFS holds small pointer files where the checkpoints should be. Calling such a file "corrupt"
sends its owner looking for a damaged disk; it is a file of another kind, refused as
``NotALightningCheckpoint``. Only consulted for files without the torch magic number, and only a
signature no torch file can have counts, so damaged torch files are still reported as corrupt.
Nothing here reads more than a few KiB.
"""

from __future__ import annotations

import os

HEAD = 4096
LFS_POINTER = b"version https://git-lfs.github.com/spec/v1\n"
NUMPY = b"\x93NUMPY"


def identify(fd: int, size: int) -> str | None:
    """A short description of the file's format (``"a MindSpore checkpoint (protobuf)"``), or ``None``."""
    head = os.pread(fd, HEAD, 0)
    if head.startswith(LFS_POINTER):
        return "a Git LFS pointer, not the file it points to (fetch the real file: git lfs pull)"
    if head.startswith(NUMPY):
        return "a NumPy .npy array"
    if _is_mindspore(head, size):
        return "a MindSpore checkpoint (protobuf)"
    return None


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    """A protobuf varint at ``pos``: (value, position after it); ``IndexError`` past the data."""
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _is_mindspore(head: bytes, size: int) -> bool:
    """MindSpore's ``Checkpoint`` message: ``repeated Value value = 1`` with ``Value{string tag = 1;
    TensorProto tensor = 2}`` and ``TensorProto{repeated int64 dims = 1; string tensor_type = 2; ...}``.

    The first entry must parse that far: a parameter name, then a tensor whose dims come before a
    type name such as ``Float32``; every length must fit in the one before it and in the file.
    """
    try:
        if head[0] != 0x0A:  # field 1, length-delimited
            return False
        value_len, pos = _varint(head, 1)
        if value_len > size - pos or head[pos] != 0x0A:  # Value.tag
            return False
        tag_len, pos = _varint(head, pos + 1)
        tag = head[pos : pos + tag_len]
        if not 0 < tag_len == len(tag) or not tag.decode("utf-8").isprintable():
            return False
        pos += tag_len
        if head[pos] != 0x12:  # Value.tensor
            return False
        tensor_len, pos = _varint(head, pos + 1)
        if tensor_len > value_len:
            return False
        while head[pos] == 0x08:  # TensorProto.dims, one varint each
            _dim, pos = _varint(head, pos + 1)
        if head[pos] == 0x0A:  # dims packed
            packed_len, pos = _varint(head, pos + 1)
            pos += packed_len
        if head[pos] != 0x12:  # TensorProto.tensor_type
            return False
        type_len, pos = _varint(head, pos + 1)
        type_name = head[pos : pos + type_len]
        return 0 < type_len <= 32 and len(type_name) == type_len and type_name.decode("ascii").isidentifier()
    except (IndexError, ValueError, UnicodeDecodeError):
        return False
