"""How a file name (or a message that holds one) may be printed: the one escaping function.

Why: a file name may hold any byte but ``/`` and NUL. Printed raw, control characters reach the
terminal (colours, cursor moves, a cleared screen) and a newline in a name forges a line of the
run's output, e.g. a fake summary. Every message that names a path passes it through ``shown``;
the CLI passes whole messages through it too, so a name inside an error from any layer is safe.
"""

from __future__ import annotations

import os
import re

__all__ = ["shown"]

_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# C0 and C1 controls, DEL, undecodable bytes (surrogate escapes of os.fsdecode), line and paragraph
# separators, and the bidirectional overrides that make a name read differently from what it is.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\udc80-\udcff\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match) -> str:
    char = match.group()
    if char in _SHORT:
        return _SHORT[char]
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that is not UTF-8, as os.fsdecode keeps it
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def shown(name: str | bytes | os.PathLike) -> str:
    """``name`` with every unprintable character escaped (``\\n``, ``\\x1b``, ``\\xff``, ``\\u202e``).

    Idempotent (an escaped text has nothing left to escape), so a message may pass through it again
    on its way out; printable text, non-ASCII letters included, is unchanged.
    """
    text = os.fsdecode(name) if isinstance(name, (bytes, os.PathLike)) else str(name)
    return _UNPRINTABLE.sub(_escape, text)
