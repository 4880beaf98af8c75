"""Upgrade darts 0.22's whole-model files with the team catalogue (run where this package is installed).

``ckpt-compat upgrade --in-place`` on ``model.pt`` and ``<name>/_model.pth.tar`` of a copy of the
saved folder, with ``catalogue/`` registered (a team would install it as an entry point instead).
The Lightning checkpoints beside them need nothing and are left as they are.
Usage: ``python upgrade.py FOLDER [CLI OPTIONS...]`` (e.g. ``--dry-run``); exits with the CLI's code.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from catalogue import catalogue  # noqa: E402

from pytest_ckpt_compat import register_catalogue  # noqa: E402
from pytest_ckpt_compat.cli import main  # noqa: E402


def whole_model_files(folder: Path) -> list[str]:
    return [str(folder / "model.pt"), *sorted(str(p) for p in folder.glob("*/_model.pth.tar"))]


if __name__ == "__main__":
    folder, options = Path(sys.argv[1]), sys.argv[2:] or ["--in-place", "--no-backup"]
    register_catalogue(catalogue())
    sys.exit(main(["upgrade", *options, *whole_model_files(folder)]))
