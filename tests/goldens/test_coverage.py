"""The README's coverage block is generated from ``golden/registry.txt`` (``ckpt-compat golden list --coverage``)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pytest_ckpt_compat.cli import main
from pytest_ckpt_compat.goldens.listing import coverage_markdown

ROOT = Path(__file__).resolve().parents[2]
BEGIN, END = "<!-- coverage:begin -->\n", "<!-- coverage:end -->"


def test_readme_coverage_block_is_what_the_registry_counts():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert BEGIN in readme and END in readme, "the README lost its coverage markers"
    block = readme.split(BEGIN, 1)[1].split(END, 1)[0]
    assert block == coverage_markdown(ROOT / "golden"), (
        "README coverage is stale: replace the block with `ckpt-compat golden list --coverage`"
    )


def _golden(root: Path, folder: str, scenarios: dict, lines: list) -> None:
    (root / folder).mkdir()
    (root / folder / "meta.json").write_text(json.dumps({"package": "x"}) + " " * 38)  # 55 bytes
    for scenario, size in scenarios.items():
        data = b"\0" * size
        (root / folder / f"{scenario}.ckpt").write_bytes(data)
        lines.append(f"{folder}/{scenario}.ckpt sha256:{hashlib.sha256(data).hexdigest()}")


def test_counts_spans_and_sizes_of_a_small_registry(tmp_path, capsys):
    lines: list = []
    _golden(tmp_path, "1.9.0", {"end_of_fit": 400_000, "fault_tolerant": 100_000}, lines)
    _golden(tmp_path, "1.10.0", {"end_of_fit": 300_000}, lines)  # sorts by version, not by name
    _golden(tmp_path, "2.0.0", {"end_of_fit": 200_000, "fault_tolerant": 100_000}, lines)
    _golden(tmp_path, "lightning-2.0.0", {"end_of_fit": 100_000}, lines)
    (tmp_path / "registry.txt").write_text("\n".join(lines) + "\n")
    expected = (
        "6 goldens in 4 folders: 3 `pytorch-lightning` releases (1.9.0 – 2.0.0) and 1 saved with the unified "
        "`lightning` package (lightning-2.0.0); 1.2 MB of checkpoints (1.2 MB with `meta.json`).\n"
        "\n"
        "| scenario | goldens | `pytorch-lightning` releases | `lightning` folders |\n"
        "|---|---:|---|---:|\n"
        "| `end_of_fit` | 4 | all | 1 |\n"
        "| `fault_tolerant` | 2 | 2: 1.9.0 – 2.0.0 | 0 |\n"
    )
    assert coverage_markdown(tmp_path) == expected
    assert main(["golden", "list", "--coverage", "--golden-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out == expected
