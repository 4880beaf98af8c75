"""What one installed teamnet release says about itself and about goldens: run as a script, prints JSON.

Run by the tests in a subprocess whose ``PYTHONPATH`` holds exactly one release (``wheels.Release``);
it imports nothing from ``tests``. One process per release, because importing Lightning is most of
the cost. Arguments::

    release_report.py [--saved GOLDEN ...] [--upgrade GOLDEN ...] [--other FILE]

``--saved``: read goldens of this release as the release itself loads them (``torch.load``, its own
classes). ``--upgrade``: goldens of an older release, loaded without and then with the team's
catalogue (``teamnet.compat``), and built into a model by ``pytest_ckpt_compat.lightning``.
``--other``: a file that is not teamnet's, which the catalogue must leave alone.
"""

import argparse
import importlib.util
import json
from importlib.metadata import version


def has(name):
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def facts():
    from teamnet.model import TeamNet

    model = TeamNet()
    return {
        "version": version("teamnet"),
        "modules": [name for name in ("teamnet.losses", "teamnet.nn.losses", "teamnet.callbacks") if has(name)],
        "state_dict": list(model.state_dict()),
        "hparams": sorted(model.hparams),
    }


def weights(state_dict):
    return {key: value.flatten().tolist() for key, value in state_dict.items()}


def loss_of(hparams):
    loss = hparams.pop("loss")
    return [type(loss).__module__ + "." + type(loss).__qualname__, loss.beta]


def read_as_saved(paths):
    import torch

    out = {}
    for path in paths:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
        hparams = dict(ckpt["hyper_parameters"])
        out[path] = {
            "lightning": ckpt["pytorch-lightning_version"],
            "teamnet_version": ckpt.get("teamnet_version"),
            "loss": loss_of(hparams),
            "hparams": hparams,
            "weights": weights(ckpt["state_dict"]),
            "callbacks": sorted(key.split("{")[0] for key in ckpt["callbacks"]),
            "callback_states": {k: v for k, v in ckpt["callbacks"].items() if not k.startswith(("Model", "Early"))},
        }
    return out


def failure(call, *args, **kwargs):
    try:
        call(*args, **kwargs)
    except Exception as exc:
        return [type(exc).__name__, str(exc)]
    return None


def upgrade_with_catalogue(paths, other):
    import teamnet.compat
    from teamnet.model import TeamNet

    from pytest_ckpt_compat import load_checkpoint, register_catalogue, upgrade
    from pytest_ckpt_compat.lightning import load_from_checkpoint

    out = {"without": {}, "with": {}}
    for path in paths:
        out["without"][path] = {
            "safe": failure(load_checkpoint, path),
            "trusted": failure(load_checkpoint, path, trust=True),
            "lightning": failure(TeamNet.load_from_checkpoint, path, weights_only=False),
        }
    catalogue = register_catalogue(teamnet.compat.catalogue())
    for path in paths:
        ckpt = load_checkpoint(path, trust=True)
        upgrade(ckpt)
        hparams = dict(ckpt["hyper_parameters"])
        model = load_from_checkpoint(TeamNet, path, trust=True)
        out["with"][path] = {
            "loss": loss_of(hparams),
            "hparams": hparams,
            "weights": weights(ckpt["state_dict"]),
            "teamnet_version": ckpt["teamnet_version"],
            "ledger": {
                "applied": ckpt["ckpt_compat"]["applied"]["teamnet"],
                "redirects": ckpt["ckpt_compat"]["redirects"],
            },
            "model": {
                "width": model.hparams.width,
                "loss": type(model.loss_fn).__module__,
                "weights": weights(model.state_dict()),
            },
        }
    if other:
        out["other_file_is_left_alone"] = not catalogue.applies_to(load_checkpoint(other))
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--saved", nargs="*", default=[])
    parser.add_argument("--upgrade", nargs="*", default=[])
    parser.add_argument("--other")
    args = parser.parse_args()
    report = {"facts": facts(), "saved": read_as_saved(args.saved)}
    if args.upgrade:
        report["upgraded"] = upgrade_with_catalogue(args.upgrade, args.other)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
