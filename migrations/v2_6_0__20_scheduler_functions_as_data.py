"""Scheduler states: the bound methods older torch pickled become the data newer torch stores.

Why: torch before 2.4 kept OneCycleLR's annealing function as a bound method in its
``state_dict()`` (``anneal_func``), and torch before 2.2 CyclicLR's scale function (``scale_fn``);
Lightning saves that dict as is, so the file pickles ``getattr(<scheduler object>, name)``, the
whole scheduler (optimizer included) with it. ``torch.load(weights_only=True)`` refuses it, and
Lightning 2.6.0 (PR #21072) loads with torch's default ``weights_only`` (``True`` since torch 2.6):
such a file does not resume there. Newer torch stores the same choice as data (pytorch PR #123775:
``_anneal_func_type`` "cos"/"linear"; PRs #91400 and #110931: no ``scale_fn``, ``_scale_fn_custom``
None for the built-in modes, rebuilt from ``mode`` on load; torch >= 2.2 pops ``_scale_fn_custom``
on load, so a state without it raises ``KeyError``), which is what this unit writes. Only
torch's own functions are recognised by name (``_annealing_cos``/``_annealing_linear``; the three
built-in CyclicLR modes); a user's custom function is code, not data, and is left untouched.
SWALR (``StochasticWeightAveraging``'s scheduler, saved in ``lr_schedulers`` and, from Lightning 1.6,
in the callback's ``scheduler_state``) pickled its ``anneal_func`` (``_cosine_anneal`` /
``_linear_anneal``) up to torch 2.9 (measured: 2.9.1 does, 2.10 stores ``_anneal_strategy`` and
rebuilds the function from it on load), which is what this unit writes for it.
The dropped method is noted in the ledger by its name; nothing else in the state changes.
When: Lightning 2.6.0 (PR #21072, torch >= 2.6 loads weights_only by default); torch 2.4 / 2.2.
Reader-side (``READER_SIDE``): it runs for every target, 2.0.0 included, because the refusal is
torch's, not the format's: an older Lightning that leaves ``weights_only`` to torch's default (2.0.0
does) refuses the same file under torch >= 2.6.
"""

from __future__ import annotations

from pytest_ckpt_compat import ops

ID = "pl-2.6.0-scheduler-functions-as-data"
VERSION = "2.6.0"
ORDER = 20
CHANGES_TENSORS = False
READER_SIDE = (
    "torch >= 2.6 loads weights_only by default: a Lightning that leaves it to torch (2.0.0 does) refuses "
    "the pickled scheduler methods, so the rewrite applies whatever the target"
)

ANNEAL = {"_annealing_cos": "cos", "_annealing_linear": "linear"}
SWALR_ANNEAL = {"_cosine_anneal": "cos", "_linear_anneal": "linear"}
SCALE = ("_triangular_scale_fn", "_triangular2_scale_fn", "_exp_range_scale_fn")
CYCLIC_SHAPE = ("max_lrs", "total_size", "step_ratio", "scale_mode")  # CyclicLR.state_dict(), every torch


def _torch_method(value, names) -> str | None:
    """The name of a torch scheduler's own method among ``names``, else None.

    Recognised by the module that defines it: a trusted load under a newer torch may rebuild it as a
    bound method or, where newer torch made it a staticmethod, as the plain function.
    """
    name = getattr(value, "__name__", None)
    module = getattr(value, "__module__", None) or ""
    if name in names and callable(value) and module.startswith("torch.optim"):
        return name
    return None


def upgrade(checkpoint: dict) -> dict:
    for key, state in (checkpoint.get("callbacks") or {}).items():
        if isinstance(state, dict) and isinstance(state.get("scheduler_state"), dict):  # SWA's own SWALR
            _swalr(checkpoint, f"callbacks[{key!r}].scheduler_state", state["scheduler_state"])
    schedulers = checkpoint.get("lr_schedulers")
    if not isinstance(schedulers, list):
        return checkpoint
    for i, state in enumerate(schedulers):
        if not isinstance(state, dict):
            continue
        _swalr(checkpoint, f"lr_schedulers[{i}]", state)
        name = _torch_method(state.get("anneal_func"), ANNEAL)
        if name is not None:
            del state["anneal_func"]
            state.setdefault("_anneal_func_type", ANNEAL[name])
            ops.note(checkpoint, ID, f"lr_schedulers[{i}].anneal_func ({name}) -> _anneal_func_type")
        if all(key in state for key in CYCLIC_SHAPE):
            _cyclic(checkpoint, i, state)
    return checkpoint


def _swalr(checkpoint: dict, where: str, state: dict) -> None:
    """SWALR: its built-in annealing function becomes ``_anneal_strategy``."""
    name = _torch_method(state.get("anneal_func"), SWALR_ANNEAL)
    if name is not None:
        del state["anneal_func"]
        state.setdefault("_anneal_strategy", SWALR_ANNEAL[name])
        ops.note(checkpoint, ID, f"{where}.anneal_func ({name}) -> _anneal_strategy")


def _cyclic(checkpoint: dict, i: int, state: dict) -> None:
    """CyclicLR: no pickled built-in scale function, and the ``_scale_fn_custom`` newer torch pops on load."""
    if "scale_fn" in state:
        name = _torch_method(state["scale_fn"], SCALE)
        if name is None:
            return  # a user's own scale function: code, left as saved
        del state["scale_fn"]
        ops.note(checkpoint, ID, f"lr_schedulers[{i}].scale_fn ({name}) dropped: rebuilt from mode on load")
    if "_scale_fn_custom" not in state:
        state["_scale_fn_custom"] = None
