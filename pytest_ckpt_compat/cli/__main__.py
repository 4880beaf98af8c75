"""``python -m pytest_ckpt_compat.cli``: the same as the ``ckpt-compat`` command."""

import sys

from . import main

sys.exit(main())
