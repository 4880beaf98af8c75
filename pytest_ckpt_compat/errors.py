"""Public spelling of :mod:`pytest_ckpt_compat.core.errors` (``from pytest_ckpt_compat.errors import ...``)."""

import sys

from .core import errors as _errors

sys.modules[__name__] = _errors
