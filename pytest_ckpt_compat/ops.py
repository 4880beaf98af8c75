"""Public spelling of :mod:`pytest_ckpt_compat.core.ops`, the helpers migration units use
(``from pytest_ckpt_compat import ops``)."""

import sys

from .core import ops as _ops

sys.modules[__name__] = _ops
