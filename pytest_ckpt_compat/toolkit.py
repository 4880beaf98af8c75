"""A team's migration toolkit: the helpers its own units use (``from pytest_ckpt_compat import toolkit``).

Ready-made units: a unit file whose ``upgrade`` is one of these needs only its ``ID``, ``VERSION``
and docstring, e.g. ``from pytest_ckpt_compat.toolkit import strip_compiled_prefix as upgrade``.

* keys: ``rename_state_keys`` (regex / ``prefix`` rules; ``_metadata``, optimizer ``param_names``
  and callback weight copies follow), ``strip_compiled_prefix`` / ``add_compiled_prefix``
  (``torch.compile``'s ``_orig_mod.``), ``strip_wrapper_prefix`` / ``add_wrapper_prefix`` (``module.``);
* hyperparameters: ``hparams.rename`` / ``hparams.drop`` (values kept in the ledger) /
  ``hparams.set_default``, and ``hparams.check(saved, MyModule)``: what ``load_from_checkpoint``
  will drop, reject or miss;
* moved classes: a unit's ``REDIRECTS = {"old.module.Class": "new.module.Class"}`` (``core.redirects``).
"""

from __future__ import annotations

from .core import hparams
from .core.renames import (
    add_compiled_prefix,
    add_wrapper_prefix,
    prefix,
    rename_state_keys,
    strip_compiled_prefix,
    strip_wrapper_prefix,
)

__all__ = [
    "hparams",
    "add_compiled_prefix",
    "add_wrapper_prefix",
    "prefix",
    "rename_state_keys",
    "strip_compiled_prefix",
    "strip_wrapper_prefix",
]
