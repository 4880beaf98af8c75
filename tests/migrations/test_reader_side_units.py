"""Reader-side units run whatever the target: real goldens upgraded for Lightning 2.0.0 load ``weights_only``.

Lightning 2.0.0 leaves ``weights_only`` to torch's default (``True`` since torch 2.6), so a file it
resumes must hold no pickled scheduler method and no ``pathlib`` class, though both units are keyed
at 2.6.0 (``READER_SIDE``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pytest_ckpt_compat import load_checkpoint, save_checkpoint, upgrade_with_result

GOLDEN = Path(__file__).resolve().parents[2] / "golden"
CASES = {  # scenario: (release, the reader-side unit it needs)
    "onecycle_lr": ("1.9.5", "pl-2.6.0-scheduler-functions-as-data"),
    "cyclic_lr": ("1.7.7", "pl-2.6.0-scheduler-functions-as-data"),
    "path_hparams": ("2.0.0", "pl-2.6.0-hparams-paths-as-strings"),
}


@pytest.mark.parametrize("scenario", sorted(CASES))
def test_golden_upgraded_to_an_older_target_loads_weights_only(tmp_path, scenario):
    release, unit_id = CASES[scenario]
    golden = GOLDEN / release / f"{scenario}.ckpt"
    checkpoint = load_checkpoint(golden, trust=True)  # a pinned golden: old torch pickled scheduler methods
    with pytest.raises(Exception, match="weights_only|Unsupported global"):
        torch.load(golden, weights_only=True)
    result = upgrade_with_result(checkpoint, "2.0.0")
    assert unit_id in [m.id for m in result.applied]
    assert result.version_after == "2.0.0"
    save_checkpoint(checkpoint, tmp_path / "up.ckpt", source=golden)
    reread = torch.load(tmp_path / "up.ckpt", weights_only=True)
    assert reread["pytorch-lightning_version"] == "2.0.0"
    if scenario == "path_hparams":
        assert reread["hyper_parameters"]["data_dir"] == "/golden-build/data/path_hparams"
    else:
        (state,) = reread["lr_schedulers"]
        assert "anneal_func" not in state and "scale_fn" not in state
