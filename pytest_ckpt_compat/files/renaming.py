"""Redirects for moved classes applied to a whole pickled object (``torch.save(model)``), by name only.

Why: some libraries save the whole object, not a Lightning checkpoint dict. darts'
``model.save()`` and its ``_model.pth.tar`` are ``torch.save`` of the ``TorchForecastingModel``,
which pickles its encoders; darts 0.23 moved them (``darts.utils.data.encoders`` →
``darts.dataprocessing.encoders``, darts#1443), so 0.22's files fail with ``No module named
'darts.utils.data.encoders'``. No unit can edit such an object as data, but a catalogue's
redirects can be written into the file itself: each pickled global name (``GLOBAL`` opcode) that a
redirect names is replaced by its new name, every other byte of the pickle and every tensor
record is kept. Nothing is unpickled and no pickled code runs, so no trust is needed to rewrite;
the new release then loads the file as if it had written it. With ``trust=True`` every name the
file will need is also imported here first, so a name that still cannot be found is
``MissingGlobal`` before anything is written. A pickle of protocol 4 or more (``STACK_GLOBAL``:
names pushed as strings, possibly shared through the memo) that a redirect would change is refused
by name (``ObjectPickleUnsupported``), never half rewritten; torch's legacy non-zip format is not
read here (the loader takes it, as any other file).
"""

from __future__ import annotations

import importlib
import os
import pickletools
import struct
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

from ..core.errors import CheckpointCompatError, CorruptCheckpoint, MissingGlobal, ObjectPickleUnsupported
from ..core.redirects import Redirects
from .names import shown
from .writing.atomic import atomic_output, open_regular
from .writing.zipformat import _ZipWriter, source_records

_PICKLE = "data.pkl"
_DICT_STARTS = {"EMPTY_DICT", "DICT", "MARK"}  # a checkpoint dict (MARK: protocol 0/1's dict literal)
_ALIGNMENT = 64  # torch's record alignment


def _pickle_record(archive: zipfile.ZipFile) -> zipfile.ZipInfo | None:
    for info in archive.infolist():
        if info.filename.partition("/")[2] == _PICKLE:
            return info
    return None


def is_object_file(path: str | os.PathLike) -> bool:
    """A zip-format torch file whose pickle is a whole object (its first opcode builds no dict)."""
    with open(open_regular(path), "rb") as fh:
        if fh.read(4) != b"PK\x03\x04":
            return False
        fh.seek(0)
        try:
            with zipfile.ZipFile(fh) as archive:
                info = _pickle_record(archive)
                if info is None:
                    return False
                with archive.open(info) as record:
                    head = record.read(64)
        except Exception:  # a damaged archive or record: the loader names what is wrong with it
            return False
    try:
        for opcode, _, _ in pickletools.genops(head):
            if opcode.name not in ("PROTO", "FRAME"):
                return opcode.name not in _DICT_STARTS
    except Exception:  # the 64 bytes end inside an opcode: not a dict start either
        return True
    return False


def rename_globals(data: bytes, redirects: Redirects, where: str = "the pickle") -> tuple[bytes, dict[str, str]]:
    """``data`` with every ``GLOBAL`` that ``redirects`` names rewritten, and the names it matched (old → new;
    a name a catalogue vouches for maps to itself and is kept as it was).

    A protocol 4+ pickle names its classes with ``STACK_GLOBAL`` (strings the memo may share, in
    frames of fixed length): it is returned as it is when no redirect moves one of its names, and
    refused by name (``ObjectPickleUnsupported``) when one would.
    """
    out = bytearray()
    used: dict[str, str] = {}
    ops = list(pickletools.genops(data))
    if ops and ops[0][0].name == "PROTO" and isinstance(ops[0][1], int) and ops[0][1] >= 4:
        matched = {old: new for old, new in _stack_globals(ops, redirects)}
        moved = sorted(old for old, new in matched.items() if old != new)
        if moved:
            raise ObjectPickleUnsupported(
                f"{where} is a protocol {ops[0][1]} pickle: its class names ({', '.join(moved[:5])}) are strings "
                "that the memo may share, so they cannot be renamed one by one"
            )
        return data, matched
    for index, (opcode, arg, pos) in enumerate(ops):
        end = ops[index + 1][2] if index + 1 < len(ops) else len(data)
        if opcode.name == "GLOBAL" and isinstance(arg, str):
            module, _, name = arg.partition(" ")
            new = redirects.resolve(module, name)
            if new is not None:
                used[f"{module}.{name}"] = f"{new[0]}.{new[1]}"
                out += b"c" + f"{new[0]}\n{new[1]}\n".encode()
                continue
        out += data[pos:end]
    return bytes(out), used


_STRING_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE"}


def _stack_globals(ops: list, redirects: Redirects) -> list[tuple[str, str]]:
    """``(old, new)`` for each ``STACK_GLOBAL`` a redirect names: its two strings, pushed or fetched from the memo."""
    memo: dict = {}
    strings: list = []  # what the last opcodes pushed: a string, or None for anything else
    found = []
    for opcode, arg, _ in ops:
        name = opcode.name
        if name in _STRING_OPS:
            strings.append(arg)
        elif name == "MEMOIZE":
            memo[len(memo)] = strings[-1] if strings else None
        elif name in ("BINPUT", "LONG_BINPUT", "PUT"):
            memo[arg] = strings[-1] if strings else None
        elif name in ("BINGET", "LONG_BINGET", "GET"):
            strings.append(memo.get(arg))
        elif name == "STACK_GLOBAL":
            module, qualname = (strings[-2], strings[-1]) if len(strings) > 1 else (None, None)
            new = redirects.resolve(module, qualname) if module and qualname else None
            if new is not None:
                found.append((f"{module}.{qualname}", f"{new[0]}.{new[1]}"))
            strings.append(None)
        elif name != "FRAME":
            strings.append(None)
    return found


def check_importable(path: str | os.PathLike, names: list[str]) -> None:
    """``MissingGlobal`` for the first ``"module qualname"`` that cannot be imported here (imports run code)."""
    for pickled in names:
        module, _, qualname = pickled.partition(" ")
        full = f"{module}.{qualname}"
        try:
            target: object = importlib.import_module(module)
            for part in qualname.split("."):
                target = getattr(target, part)
        except (ImportError, AttributeError) as exc:
            raise MissingGlobal(shown(str(path)), full, f"{type(exc).__name__}: {exc}") from None


def _importable_names(data: bytes) -> list[str]:
    """Pickled names as ``module qualname``; the dotted form cannot tell a module from a nested class."""
    return list(
        dict.fromkeys(
            arg for opcode, arg, _ in pickletools.genops(data) if opcode.name == "GLOBAL" and isinstance(arg, str)
        )
    )


def root_class(data: bytes) -> str:
    """``module.name`` of the pickled root object's class (the first ``GLOBAL``), ``""`` if none."""
    for opcode, arg, _ in pickletools.genops(data):
        if opcode.name == "GLOBAL" and isinstance(arg, str):
            return arg.replace(" ", ".", 1)
        if opcode.name not in ("PROTO", "FRAME"):
            return ""
    return ""


def _literal(value: object, where: str) -> bytes:
    """``value`` as protocol 2 opcodes that touch no memo (a memo write would shift the file's own)."""
    if value is None:
        return b"N"
    if isinstance(value, bool):
        return b"\x88" if value else b"\x89"
    if isinstance(value, int) and -(2**31) <= value < 2**31:
        return b"J" + struct.pack("<i", value)
    if isinstance(value, str):
        raw = value.encode("utf-8")
        return b"X" + struct.pack("<I", len(raw)) + raw
    raise ObjectPickleUnsupported(f"{where}: OBJECT_STATE value {value!r} is not a str, int, bool or None")


_KEEPS_CONTAINER = {"SETITEM", "SETITEMS", "APPEND", "APPENDS", "ADDITEMS"}


def _builds(data: bytes, classes: set[str], where: str) -> list[tuple[int, str]]:
    """``(offset of BUILD, class)`` for each object of one of ``classes`` that the pickle gives a state.

    A small stack machine over the opcodes (``pickletools`` knows each one's stack effect): values
    are tagged only as far as this needs (a class pushed by ``GLOBAL``, an object made from it by
    ``NEWOBJ``, a dict); the memo keeps tags, so a class or object fetched again is still known.
    """
    stack: list[tuple] = []
    memo: dict = {}
    marks: list[int] = []
    found: list[tuple[int, str]] = []
    for opcode, arg, pos in pickletools.genops(data):
        name = opcode.name
        if name == "GLOBAL":
            stack.append(("class", str(arg).replace(" ", ".", 1)))
        elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo[arg] = stack[-1]
        elif name == "MEMOIZE":
            memo[len(memo)] = stack[-1]
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            stack.append(memo.get(arg, ("value",)))
        elif name == "MARK":
            marks.append(len(stack))
        elif name in ("EMPTY_DICT", "DICT"):
            if name == "DICT":
                del stack[marks.pop() :]
            stack.append(("dict",))
        elif name == "NEWOBJ":
            del stack[-1]
            cls = stack.pop()
            stack.append(("object", cls[1] if cls[0] == "class" else ""))
        elif name == "BUILD":
            state = stack.pop()
            target = stack[-1]
            if target[0] == "object" and target[1] in classes:
                if state[0] != "dict":
                    raise ObjectPickleUnsupported(f"{where}: a {target[1]} is given a state that is not a dict")
                found.append((int(pos or 0), target[1]))
        elif name in _KEEPS_CONTAINER:
            if pickletools.markobject in opcode.stack_before:
                del stack[marks.pop() :]
            else:
                del stack[len(stack) - (len(opcode.stack_before) - 1) :]
        else:
            before = opcode.stack_before
            if pickletools.markobject in before:
                del stack[marks.pop() :]
                before = before[: before.index(pickletools.markobject)]
            if before:
                del stack[len(stack) - len(before) :]
            stack.extend(("value",) for _ in opcode.stack_after)
    return found


def set_object_state(data: bytes, by_class: dict[str, dict], where: str = "the pickle") -> tuple[bytes, dict]:
    """``data`` with attributes set on every object of the named classes (``key value SETITEM`` before
    its ``BUILD``), and ``{class: attributes}`` for the classes the pickle has objects of. Later keys
    win, so an ``OBJECT_STATE`` hook names only what the old files lack. Values are literals: a str,
    an int, a bool or ``None``."""
    builds = _builds(data, set(by_class), where)
    out, start = bytearray(), 0
    for pos, cls in builds:
        out += data[start:pos]
        out += b"".join(_literal(str(k), where) + _literal(v, where) + b"s" for k, v in by_class[cls].items())
        start = pos
    out += data[start:]
    return bytes(out), {cls: by_class[cls] for cls in dict.fromkeys(cls for _, cls in builds)}


def redirect_object_file(
    source: str | os.PathLike,
    dest: str | os.PathLike | None,
    redirects: Redirects,
    *,
    trust: bool = False,
    state_hooks: Sequence[tuple[str, Callable[[str, bytes], dict]]] = (),
) -> tuple[dict[str, str], dict | None]:
    """Write ``source`` to ``dest`` with its pickled names redirected: the redirects used (old → new)
    and the attributes set by the ``state_hooks`` (``(catalogue, hook)``) of the catalogues whose
    redirects the file used (``{class: {attribute: value}}``). Nothing to redirect: ``({}, {})`` when
    a catalogue vouches for one of its names (a file the new release wrote), ``({}, None)`` when none
    knows any.

    ``dest=None``: a dry run, nothing is written. ``dest`` may be ``source`` (an in-place upgrade the
    caller asked for): the new file replaces it atomically. The tensor records are copied byte for
    byte, the other records as they were; only the pickle changes.
    """
    where = shown(str(source))
    fd = open_regular(source)
    try:
        with open(fd, "rb", closefd=False) as fh, zipfile.ZipFile(fh) as archive:
            info = _pickle_record(archive)
            if info is None:
                raise ObjectPickleUnsupported(f"{where} has no {_PICKLE} record: not a torch.save archive")
            try:
                data = archive.read(info)
                new, matched = rename_globals(data, redirects, where)
            except CheckpointCompatError:
                raise
            except Exception as exc:  # a truncated or damaged pickle: named, as the loader would
                raise CorruptCheckpoint(f"{where}: its pickle cannot be read ({type(exc).__name__}: {exc})") from exc
            used = {old: new_name for old, new_name in matched.items() if old != new_name}
            if not used:
                return used, {} if matched else None  # None: no catalogue knows any of its classes
            catalogues = {_catalogue_of(redirects, old) for old in used}
            state: dict[str, dict] = {}
            for catalogue, hook in state_hooks:
                if catalogue in catalogues:
                    for cls, values in (hook(root_class(new), new) or {}).items():
                        state.setdefault(cls, {}).update(values)
            if state:
                new, state = set_object_state(new, state, where)
            if trust:
                check_importable(source, _importable_names(new))
            if dest is not None:
                _write(fd, archive, info, new, Path(dest), Path(source))
            return used, state
    finally:
        os.close(fd)


def _catalogue_of(redirects: Redirects, old: str) -> str:
    module, _, name = old.rpartition(".")
    origin = redirects.declared_by(module, name)
    return origin.removeprefix("catalogue ").split(":")[0]


def _write(fd: int, archive: zipfile.ZipFile, info: zipfile.ZipInfo, new: bytes, dest: Path, like: Path) -> None:
    prefix = info.filename.partition("/")[0]
    copied, _ = source_records(fd)
    with atomic_output(dest, like=like) as out:
        writer = _ZipWriter(out, prefix, _ALIGNMENT, compute_crc=True)
        for record in archive.infolist():
            name = record.filename.partition("/")[2]
            if name in copied:
                item = copied[name]
                writer.add_copy(name, fd, item.data_offset, item.size, item.crc)
            else:
                writer.add_bytes(name, new if name == _PICKLE else archive.read(record))
        writer.finish()
