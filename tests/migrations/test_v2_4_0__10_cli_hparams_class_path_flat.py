"""pl-2.4.0-cli-hparams-class-path-flat: 2.3's nested LightningCLI hparams become 2.4's flat form."""

from __future__ import annotations

from tests.migrations.helpers_pre16 import unit

UNIT = unit("pl-2.4.0-cli-hparams-class-path-flat")
INSTANTIATOR = "lightning.pytorch.cli.instantiate_module"


def test_nested_cli_hparams_become_flat_as_2_4_writes_them():
    """The hparams of the 2.3.0 cli_saved golden, as saved."""
    ckpt = {
        "hyper_parameters": {
            "_instantiator": INSTANTIATOR,
            "class_path": "ckpt_compat_recipe.CliModule",
            "init_args": {"batch_size": 4, "hidden": 12, "lr": 0.02, "name": "golden-cli_saved"},
        },
        "datamodule_hyper_parameters": {"_instantiator": INSTANTIATOR, "batch_size": 4},
    }
    UNIT.upgrade(ckpt)
    assert ckpt["hyper_parameters"] == {
        "_class_path": "ckpt_compat_recipe.CliModule",
        "batch_size": 4,
        "hidden": 12,
        "lr": 0.02,
        "name": "golden-cli_saved",
        "_instantiator": INSTANTIATOR,
    }
    assert ckpt["datamodule_hyper_parameters"] == {"_instantiator": INSTANTIATOR, "batch_size": 4}
    assert "class_path/init_args" in str(ckpt["ckpt_compat"]["notes"][UNIT.id])


def test_a_class_path_hyperparameter_without_the_cli_instantiator_stays():
    hparams = {"class_path": "my.Model", "init_args": {"a": 1}}
    ckpt = {"hyper_parameters": dict(hparams)}
    UNIT.upgrade(ckpt)
    assert ckpt["hyper_parameters"] == hparams and "ckpt_compat" not in ckpt
