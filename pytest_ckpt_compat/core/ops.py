"""Operations migration units use: plain dict helpers, never Lightning.

In the spirit of Alembic's ``op`` module: the few moves that several units in ``migrations/`` make
(keep removed state in the ledger, note what was done, rename top-level keys, find the fit loop,
build 1.6.0 progress trackers) live here once, so each unit reads as what changed and nothing else.
Units never touch ``checkpoint["ckpt_compat"]`` by hand: ``drop``, ``note``, ``ledger_entry`` and
``keep_in_ledger`` go through its owner, ``ledger``. Must not import the engine or the catalogue, nor torch at import
(``ckpt-compat migrations`` and ``--help`` load the units, which import this module, and must answer at once).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "LEDGER_KEY",
    "NOTES",
    "ORIGINAL_COUNTERS",
    "PROCESSED",
    "RC",
    "STARTED",
    "differences",
    "drop",
    "evaluation_loop_skeleton_1_6_0",
    "fit_loop",
    "fit_loop_skeleton_1_6_0",
    "get_in",
    "keep_in_ledger",
    "ledger",
    "ledger_entry",
    "note",
    "progress",
    "rename_keys",
    "to_plain",
    "tracker",
    "warn",
]

from . import ledger as _ledger

LEDGER_KEY = _ledger.KEY  # our own top-level key in a checkpoint; Lightning ignores it
NOTES, ORIGINAL_COUNTERS = _ledger.NOTES, _ledger.ORIGINAL_COUNTERS  # the ledger's sub-keys units read

# ---------------------------------------------------------------------------------------------
# Plain data: what ``torch.load(weights_only=True)`` accepts
# ---------------------------------------------------------------------------------------------
# Migrations move state of removed features under ``ckpt_compat["dropped"]`` instead of
# destroying it. What they move may hold objects (numpy RNG states, torch functions, sets, enums);
# ``to_plain`` keeps the data (numbers and arrays become tensors) and names the other objects.

_SCALARS = (str, int, float, bool, type(None))
# What is kept must load with weights_only under the oldest torch the supported Lightning releases accept
# (2.0's table knows tensors and most dtypes, not devices or torch.bool as objects: those become strings).
# Unsigned arrays widened to a signed dtype that holds every value: torch < 2.3 has no uint16/32/64
# tensors (a uint32 tensor pickles torch.uint32 and _rebuild_tensor_v3, which torch 2.0 cannot read), and
# numpy's uint32 RNG state (1.5 fault-tolerant files) is the common case; uint64 becomes Python ints.
_WIDER = {"uint16": "int32", "uint32": "int64"}


def to_plain(value: Any) -> Any:
    """A weights_only-loadable copy of ``value``: tensors kept, arrays as tensors, objects named."""
    import torch  # here: see the module docstring

    if isinstance(value, (*_SCALARS, torch.Tensor)):
        return value
    if isinstance(value, (torch.device, torch.dtype)):
        return str(value)  # "cpu", "torch.float32": torch 2.0's weights_only refuses torch.device, torch.bool, ...
    if isinstance(value, dict):
        return {k if isinstance(k, (str, int)) else repr(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [to_plain(v) for v in items]
    if type(value).__module__ == "numpy":
        if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
            return value.item()  # numpy scalar
        dtype = str(getattr(value, "dtype", ""))
        if dtype == "uint64":
            return value.tolist()  # Python ints (nested lists): no torch dtype both holds them and old torch reads
        if dtype in _WIDER:
            value = value.astype(_WIDER[dtype])
        try:
            return torch.as_tensor(value)  # numeric arrays keep their data
        except (TypeError, RuntimeError):
            return [to_plain(v) for v in value.tolist()]
    module = getattr(value, "__module__", None)
    name = getattr(value, "__name__", None) or getattr(value, "__qualname__", None)
    if module and name:
        return f"{module}.{name}"
    return repr(value)


# ---------------------------------------------------------------------------------------------
# The ledger: ``checkpoint["ckpt_compat"]``
# ---------------------------------------------------------------------------------------------


def ledger(checkpoint: dict) -> dict:
    """Our ledger dict in ``checkpoint``, created on first use (prefer the named helpers below)."""
    return _ledger.ensure(checkpoint)


def ledger_entry(checkpoint: dict, name: str, default: Any = None) -> Any:
    """What the ledger holds under ``name`` (e.g. ``ledger.ORIGINAL_COUNTERS``); creates nothing."""
    return _ledger.get(checkpoint, name, default)


def keep_in_ledger(checkpoint: dict, name: str, value: Any) -> None:
    """Keep ``value`` under the ledger's sub-key ``name`` (e.g. the pre-1.6 ``original_counters``)."""
    _ledger.put(checkpoint, name, value)


def drop(checkpoint: dict, path: str, value: Any, *, unique: bool = False) -> str:
    """Keep removed state under ``ckpt_compat.dropped[path]``: moved, never destroyed; returns the path.

    With ``unique`` a taken path gets ``#2``, ``#3``, ... so that an earlier dropped value is not lost.
    """
    dropped = _ledger.section(checkpoint, _ledger.DROPPED)
    base, n = path, 2
    while unique and path in dropped:
        path, n = f"{base}#{n}", n + 1
    dropped[path] = value
    return path


def note(checkpoint: dict, unit_id: str, text: str) -> None:
    """Append ``text`` to ``ckpt_compat.notes[unit_id]`` ("; "-joined) unless it is already there."""
    notes = _ledger.section(checkpoint, _ledger.NOTES)
    previous = notes.get(unit_id)
    if not previous:
        notes[unit_id] = text
    elif text not in previous:
        notes[unit_id] = f"{previous}; {text}"


def warn(checkpoint: dict, unit_id: str, text: str) -> None:
    """``note`` that the upgrade also reports as a warning (a line of ``ckpt-compat upgrade``'s output)."""
    note(checkpoint, unit_id, text)
    _ledger.warn(checkpoint, text)


# ---------------------------------------------------------------------------------------------
# Keys and paths
# ---------------------------------------------------------------------------------------------


def rename_keys(mapping: dict, renames: dict, checkpoint: dict, *, dropped_prefix: str = "") -> list:
    """Rename ``old -> new`` keys of ``mapping``; a present ``new`` wins and the old value is dropped.

    Returns the old keys whose value went to ``ckpt_compat.dropped[dropped_prefix + old]``, so a
    unit can note them. Renames apply in ``renames`` order (several old names may share a new one).
    """
    collided = []
    for old, new in renames.items():
        if old not in mapping:
            continue
        value = mapping.pop(old)
        if new in mapping:
            drop(checkpoint, dropped_prefix + old, value)
            collided.append(old)
        else:
            mapping[new] = value
    return collided


def get_in(mapping: Any, *path: Any, default: Any = None) -> Any:
    """``mapping[p0][p1]...``, or ``default`` as soon as a level is missing or not a dict (no KeyError)."""
    for key in path:
        if not isinstance(mapping, dict) or key not in mapping:
            return default
        mapping = mapping[key]
    return mapping


def fit_loop(checkpoint: dict) -> dict | None:
    """``checkpoint["loops"]["fit_loop"]`` when it is a dict, else ``None`` (units then leave the file alone)."""
    loop = get_in(checkpoint, "loops", "fit_loop")
    return loop if isinstance(loop, dict) else None


# ---------------------------------------------------------------------------------------------
# Lightning 1.6.0 progress trackers (the layout the 1.6.0 units build and repair)
# ---------------------------------------------------------------------------------------------

# tracker fields of the 1.6.0 progress types, in the order of _get_fit_loop_initial_state_1_6_0
RC = ("completed", "ready")  # _ReadyCompletedTracker
STARTED = ("completed", "ready", "started")  # _StartedTracker
PROCESSED = ("ready", "started", "processed", "completed")  # _ProcessedTracker


def tracker(fields: tuple[str, ...]) -> dict:
    """A tracker with every field at zero (a fresh dict: callers mutate it)."""
    return {f: 0 for f in fields}


def progress(fields: tuple[str, ...], last_batch: bool = False) -> dict:
    """A zero ``current``/``total`` progress; batch progress also has ``is_last_batch=False``."""
    out: dict[str, Any] = {"current": tracker(fields), "total": tracker(fields)}
    if last_batch:
        out["is_last_batch"] = False
    return out


def evaluation_loop_skeleton_1_6_0(last_batch: bool) -> dict:
    """Lightning 1.6.0's validate/test/predict loop state with zero progress (fresh dicts).

    ``last_batch``: validate and test batch progress carry ``is_last_batch``, predict's does not.
    """
    return {
        "state_dict": {},
        "dataloader_progress": progress(RC),
        "epoch_loop.state_dict": {},
        "epoch_loop.batch_progress": progress(PROCESSED, last_batch),
    }


def fit_loop_skeleton_1_6_0() -> dict:
    """Lightning 1.6.0's fit-loop state with zero progress, without the 1.6.5 ``_batches_that_stepped``.

    Fresh dicts on every call. ``epoch_loop.state_dict`` is left empty because the logger step is
    the counter units' to decide (1.6.0 from the counters, 1.6.5 from the loop progress).
    """
    return {
        "epoch_loop.batch_loop.manual_loop.optim_step_progress": progress(RC),
        "epoch_loop.batch_loop.manual_loop.state_dict": {},
        "epoch_loop.batch_loop.optimizer_loop.optim_progress": {
            "optimizer": {"step": progress(RC), "zero_grad": progress(STARTED)},
            "optimizer_position": 0,
        },
        "epoch_loop.batch_loop.optimizer_loop.state_dict": {},
        "epoch_loop.batch_loop.state_dict": {},
        "epoch_loop.batch_progress": progress(PROCESSED, True),
        "epoch_loop.scheduler_progress": progress(RC),
        "epoch_loop.state_dict": {},
        "epoch_loop.val_loop.dataloader_progress": progress(RC),
        "epoch_loop.val_loop.epoch_loop.batch_progress": progress(PROCESSED, True),
        "epoch_loop.val_loop.epoch_loop.state_dict": {},
        "epoch_loop.val_loop.state_dict": {},
        "epoch_progress": progress(PROCESSED),
        "state_dict": {},
    }


# ---------------------------------------------------------------------------------------------
# Exact structural equality: the one comparison of checkpoint trees
# ---------------------------------------------------------------------------------------------
def differences(a: Any, b: Any, path: str = "", *, ordered_keys: bool = False) -> list[str]:
    """Key paths where two checkpoint trees differ, exactly (empty: equal).

    Tensors by dtype, shape and value; dicts by their keys (also their order with ``ordered_keys``)
    and values; lists and tuples by type, length and items; anything else by type and ``==``, so
    ``1``, ``1.0`` and ``True`` differ. The contract checks (``testing``), the pre-migrated repair
    and the unit tests all compare with this one function.
    """
    import torch  # here: see the module docstring

    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        same = (
            isinstance(a, torch.Tensor)
            and isinstance(b, torch.Tensor)
            and a.shape == b.shape
            and a.dtype == b.dtype
            and torch.equal(a, b)
        )
        return [] if same else [path or "."]
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{path}/{k!s} removed" for k in a if k not in b] + [f"{path}/{k!s} added" for k in b if k not in a]
        if not out and ordered_keys and list(a) != list(b):
            out.append(f"{path or '.'}: key order {list(a)!r} -> {list(b)!r}")
        for key in a:
            if key in b:
                out.extend(differences(a[key], b[key], f"{path}/{key!s}", ordered_keys=ordered_keys))
        return out
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and type(a) is type(b):
        if len(a) != len(b):
            return [f"{path} length {len(a)} -> {len(b)}"]
        return [
            d
            for i, (x, y) in enumerate(zip(a, b))
            for d in differences(x, y, f"{path}[{i}]", ordered_keys=ordered_keys)
        ]
    try:
        return [] if (type(a) is type(b) and a == b) else [f"{path}: {a!r} -> {b!r}"]
    except Exception:
        return [f"{path}: not comparable"]
