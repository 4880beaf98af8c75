"""`ckpt-compat upgrade` on every real golden: the written file is current and weights_only-safe.

(The matrix then proves the same upgrade resumes with exact state; this checks the CLI's own path:
safe load, trust only where the golden pickles objects, carry-over writer, in-place backup.)
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from pytest_ckpt_compat.cli import main
from pytest_ckpt_compat.core.versions import installed_lightning_version, parse

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
ENTRIES = sorted(
    line.split()[0]
    for line in (GOLDEN / "registry.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
)
CURRENT = installed_lightning_version()


@pytest.mark.parametrize("entry", [e for e in ENTRIES if e.endswith("/end_of_fit.ckpt")], ids=lambda e: e.split("/")[0])
def test_cli_upgrades_real_golden_to_a_weights_only_file(entry, tmp_path):
    source = tmp_path / "in.ckpt"
    shutil.copyfile(GOLDEN / entry, source)
    before = source.read_bytes()
    saved = torch.load(source, weights_only=False)["pytorch-lightning_version"]
    if parse(saved) > parse(CURRENT):
        pytest.skip(f"golden {saved} is newer than the installed Lightning {CURRENT}")
    out = tmp_path / "out.ckpt"
    code = main(["upgrade", str(source), "-o", str(out)])
    if code == 6:  # the golden pickles objects beyond the allowlist (e.g. AttributeDict with OmegaConf)
        code = main(["upgrade", str(source), "-o", str(out), "--trust"])
    assert code == 0
    assert source.read_bytes() == before
    upgraded = torch.load(out, weights_only=True)
    assert upgraded["pytorch-lightning_version"] == CURRENT
    if parse(saved) < parse(CURRENT):
        assert upgraded["legacy_pytorch-lightning_version"] == saved
    assert all(isinstance(k, str) for k in upgraded.get("callbacks", {}))
    original = torch.load(source, weights_only=False)["state_dict"]
    assert upgraded["state_dict"].keys() == original.keys()
    assert all(torch.equal(upgraded["state_dict"][k], v) for k, v in original.items())
