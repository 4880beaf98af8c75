"""The hardening suite needs Linux: it forks, reads /proc and sets resource limits."""

from __future__ import annotations

import sys

collect_ignore_glob = [] if sys.platform.startswith("linux") else ["test_*.py"]
