"""Fault-tolerant training was removed: its loop leftovers are moved out of the loop state.

Why: with ``PL_FAULT_TOLERANT_TRAINING=1`` (1.5 – 1.9) the loops also saved their metric
collections (``_results``, ``epoch_loop._results``, ``epoch_loop.val_loop._results``) and the
dataloader/sampler state (``dataloader_state_dict`` inside an ``*state_dict`` entry). 2.0+ ignore
both, and the 2.0 loop flattening would otherwise carry ``epoch_loop._results`` of the evaluation
loops into a top-level ``_results`` key. They are moved, as plain data (numpy arrays become tensors,
see ``pytest_ckpt_compat.core.ops.to_plain``), to
``ckpt_compat.dropped["loops/<loop>/<key>"]`` (and ``.../<key>/dataloader_state_dict``) under
their original key paths, before the loop-structure units run.
When: Lightning 2.0.0, PR #16516 / #16533 (the PL_FAULT_TOLERANT_TRAINING flag removed).
"""

from __future__ import annotations

from pytest_ckpt_compat import ops

ID = "pl-2.0.0-drop-fault-tolerant-state"
VERSION = "2.0.0"
ORDER = 20
CHANGES_TENSORS = False


def upgrade(checkpoint: dict) -> dict:
    loops = checkpoint.get("loops")
    if not isinstance(loops, dict):
        return checkpoint
    for loop_name, loop in loops.items():
        if not isinstance(loop, dict):
            continue
        for key in list(loop):
            if key == "_results" or (isinstance(key, str) and key.endswith("._results")):
                ops.drop(checkpoint, f"loops/{loop_name}/{key}", ops.to_plain(loop.pop(key)))
            elif isinstance(key, str) and key.endswith("state_dict") and isinstance(loop[key], dict):
                if "dataloader_state_dict" in loop[key]:
                    path = f"loops/{loop_name}/{key}/dataloader_state_dict"
                    ops.drop(checkpoint, path, ops.to_plain(loop[key].pop("dataloader_state_dict")))
    return checkpoint
