"""Real checkpoints written by other public projects (see SOURCES.md), tried as a new user would.

Per Lightning file: ``ckpt-compat inspect``, ``ckpt-compat upgrade IN -o OUT``, a
``weights_only`` reload of OUT, every state_dict tensor bit-identical, and a resume of a module
rebuilt from the state_dict's names and shapes: plain Lightning on OUT, and the ORIGINAL file with
``CheckpointUpgrade`` (with float16 AMP where the file holds GradScaler state, which must be
restored as saved). Files that are not Lightning checkpoints must be refused, unchanged.
Failures of our code on a file are ``xfail(strict=True)`` entries in manifest.json, named by class.
"""

from __future__ import annotations

import ast
import contextlib
import copy
import functools
import hashlib
import importlib.util
import inspect
import io
import itertools
import json
import os
import shutil
import subprocess
import warnings
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

pl = pytest.importorskip("pytorch_lightning")

from pytest_ckpt_compat.cli import main as cli_main  # noqa: E402
from pytest_ckpt_compat.lightning import CheckpointUpgrade  # noqa: E402

HERE = Path(__file__).parent
MANIFEST = json.loads((HERE / "manifest.json").read_text())["files"]
# The files are other projects' data, not this repository's: a setting names the folder that holds them.
SETTING = "CKPT_COMPAT_REALWORLD"
HOW_TO_GET = (
    f"the real-world checkpoints are not in this repository: set {SETTING} to a folder holding the files "
    "that tests/realworld/SOURCES.md lists (take each with `git show COMMIT:PATH > FILE` in a clone of its "
    "repository; CI points it at ../shared/realworld/project)"
)


def data_folder() -> Path:
    """The folder the setting names: unset skips this module (with how to get the files); a setting
    that names no folder is an error, so a CI that asked for the files never passes without them."""
    setting = os.environ.get(SETTING, "")
    if not setting:
        pytest.skip(HOW_TO_GET, allow_module_level=True)
    folder = Path(setting).expanduser().resolve()
    if not folder.is_dir():
        pytest.fail(f"{SETTING}={setting!r} is not a folder; {HOW_TO_GET}", pytrace=False)
    return folder


DATA = data_folder()


@functools.cache
def _located(folder: Path) -> dict[str, Path]:
    """Each manifest file's path in the folder: by its name, else a file with its sha256 (a folder
    that names the same bytes otherwise, such as ``extra/``). Files not there are left out."""
    by_hash: dict[str, Path] | None = None
    found = {}
    for entry in MANIFEST:
        path = folder / entry["file"]
        if not path.is_file():
            if by_hash is None:
                by_hash = {sha256(p): p for p in sorted(folder.iterdir()) if p.is_file()}
            path = by_hash.get(entry["sha256"], path)
        if path.is_file():
            found[entry["file"]] = path
    return found


def data_file(entry: dict) -> Path:
    """The manifest entry's file in the data folder."""
    return _located(DATA)[entry["file"]]


MAX_BYTES = 5 * 1024 * 1024
# Paths of the machines this project is built on; a file from elsewhere must not contain them.
OUR_PATHS = (b"/work/", b"/root/", b"/golden-build/", b"/tmp/pytest-of-")


def entries(*kinds: str, check: str | None = None) -> list:
    """Manifest entries of these kinds as pytest params, with their strict xfail for ``check``."""
    params = []
    for entry in MANIFEST:
        if entry["kind"] not in kinds:
            continue
        reason = entry["xfail"].get(check) if check else None
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        missing = [m for m in entry.get("requires", []) if importlib.util.find_spec(m) is None]
        if check and missing:  # the file pickles that package's classes (the [test] extra installs it)
            marks.append(pytest.mark.skip(reason=f"needs {', '.join(missing)} installed to unpickle"))
        if entry["file"] not in _located(DATA):
            marks.append(
                pytest.mark.skip(reason=f"{entry['file']} (sha256 {entry['sha256'][:12]}...) is not in {DATA}")
            )
        params.append(pytest.param(entry, id=entry["file"], marks=marks))
    return params


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cli(*args) -> subprocess.CompletedProcess:
    """``ckpt-compat ARGS`` through the CLI's entry function, in process (a fresh interpreter per
    call would cost seconds of imports); returns the exit code and what it printed."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli_main([str(a) for a in args])
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def options(entry: dict) -> list:
    """CLI options the manifest says a user must give for this file."""
    found = ["--trust"] if entry["trust"] else []
    if entry.get("assume_version"):
        found += ["--assume-version", entry["assume_version"]]
    return found


def raw_load(entry: dict) -> dict:
    """The original file, read by our loader (trusted where the manifest says it must be)."""
    from pytest_ckpt_compat.files.loading import load_checkpoint

    return load_checkpoint(data_file(entry), trust=entry["trust"] is not None)


@pytest.fixture(scope="module")
def upgraded_files(tmp_path_factory):
    """``ckpt-compat upgrade IN -o OUT`` once per file; the result (or the failed run) is shared."""
    done: dict[str, tuple[subprocess.CompletedProcess, Path]] = {}

    def get(entry: dict) -> tuple[subprocess.CompletedProcess, Path]:
        if entry["file"] not in done:
            out = tmp_path_factory.mktemp("upgraded") / entry["file"]
            done[entry["file"]] = (cli("upgrade", data_file(entry), "-o", out, *options(entry)), out)
        return done[entry["file"]]

    return get


# --------------------------------------------------------------------------------- the data itself
@pytest.mark.parametrize("entry", entries("lightning", "foreign-classes", "refuse"))
def test_file_is_the_recorded_one(entry):
    """Unmodified (sha256 as recorded), small, and free of this machine's paths."""
    path = data_file(entry)
    data = path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == entry["sha256"]
    assert len(data) < MAX_BYTES
    assert [p for p in OUR_PATHS if p in data] == []


def test_every_data_file_is_in_the_manifest():
    """The folder holds the manifest's files and nothing else (``SOURCES.md`` and ``sha256.txt``
    aside), and its ``sha256.txt``, where there is one, pins each as the manifest does."""
    beside = {"SOURCES.md", "sha256.txt"}
    assert sorted(p.name for p in DATA.iterdir() if p.name not in beside) == sorted(e["file"] for e in MANIFEST)
    if (DATA / "sha256.txt").is_file():
        pinned = dict(line.split()[::-1] for line in (DATA / "sha256.txt").read_text().splitlines() if line.strip())
        assert pinned == {e["file"]: e["sha256"] for e in MANIFEST}
    sources = (HERE / "SOURCES.md").read_text()
    assert [e["file"] for e in MANIFEST if f"`{e['file']}`" not in sources] == []


# ------------------------------------------------------------------------------ Lightning files
@pytest.mark.parametrize("entry", entries("lightning", check="inspect"))
def test_inspect(entry):
    result = cli("inspect", data_file(entry), "--json", *options(entry))
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["saved_version"] == (entry["saved_version"] if not entry.get("assume_version") else None)
    assert info["plan"], "an old file must have migrations to run"
    assert "state_dict" in info["top_level_keys"]
    # states the upgrade cannot key are shown, not silently left behind
    assert sorted(info["unkeyed_callbacks"]) == sorted(entry["unkeyable_callbacks"])


@pytest.mark.parametrize("entry", entries("lightning", check="upgrade"))
def test_upgrade_keeps_every_tensor(entry, upgraded_files):
    """Exit 0, the input untouched, OUT loads with weights_only=True, tensors bit-identical."""
    source = data_file(entry)
    result, out = upgraded_files(entry)
    assert result.returncode == 0, result.stderr
    assert sha256(source) == entry["sha256"]
    upgraded = torch.load(out, map_location="cpu", weights_only=entry["trust"] is None)
    assert upgraded["pytorch-lightning_version"] == pl.__version__
    assert upgraded["legacy_pytorch-lightning_version"] == (entry.get("assume_version") or entry["saved_version"])
    original = raw_load(entry)
    assert list(upgraded["state_dict"]) == list(original["state_dict"])
    for name, tensor in original["state_dict"].items():
        got = upgraded["state_dict"][name]
        assert got.dtype == tensor.dtype and got.shape == tensor.shape, name
        assert torch.equal(got, tensor), name
    assert aliases(upgraded["state_dict"]) == aliases(original["state_dict"]), (
        "tensors shared in the file are no longer shared"
    )
    for index, state in enumerate(original.get("optimizer_states") or []):
        assert _tensors(upgraded["optimizer_states"][index]) == _tensors(state), f"optimizer {index}"
    # states no configuration could be found for keep a bare class name as their key; in a file
    # saved by 1.5+ a bare class name is already the callback's own state_key (StochasticWeightAveraging)
    own_keys = bare_state_keys(original) if original_is_keyed(entry) else []
    assert sorted(bare_state_keys(upgraded)) == sorted(entry["unkeyable_callbacks"] + own_keys)
    for name in entry["unkeyable_callbacks"]:
        assert f"callback state kept under {name!r}, not keyed" in result.stdout + result.stderr


@pytest.mark.parametrize(
    "entry", [p for p in entries("lightning", check="hparams") if p.values[0].get("hparams_class")]
)
def test_upgrade_keeps_the_hyper_parameters_class(entry, upgraded_files):
    """Hydra-style hparams stay what they were (an OmegaConf ``DictConfig``, not a plain dict):
    Lightning's ``load_from_checkpoint`` hands them to ``__init__``, which reads ``cfg.key``."""
    result, out = upgraded_files(entry)
    assert result.returncode == 0, result.stderr
    upgraded = torch.load(out, map_location="cpu", weights_only=False)
    original = raw_load(entry)
    hparams = upgraded["hyper_parameters"]
    assert f"{type(hparams).__module__}.{type(hparams).__qualname__}" == entry["hparams_class"]
    assert hparams == original["hyper_parameters"]
    assert upgraded.get("hparams_type") is original.get("hparams_type")
    assert upgraded.get("hparams_name") == original.get("hparams_name")


def bare_state_keys(checkpoint: dict) -> list:
    """Callback state keys without a configuration part: a class name (or, before 1.5, a class)."""
    return [str(k) for k in checkpoint.get("callbacks") or {} if "{" not in str(k)]


def original_is_keyed(entry: dict) -> bool:
    """Saved by Lightning 1.5 or later, which keys callback states by each callback's ``state_key``."""
    from packaging.version import Version

    return entry["saved_version"] is not None and Version(entry["saved_version"]) >= Version("1.5")


@pytest.mark.parametrize("entry", entries("lightning", check="callback_keys"))
def test_upgraded_callback_keys_agree_with_their_states(entry, upgraded_files):
    """A ModelCheckpoint key's ``mode`` must not contradict its own state: with ``min`` the best
    score is never above the current one, with ``max`` never below."""
    result, out = upgraded_files(entry)
    assert result.returncode == 0, result.stderr
    upgraded = torch.load(out, map_location="cpu", weights_only=entry["trust"] is None)
    for key, state in (upgraded.get("callbacks") or {}).items():
        name, _, config = str(key).partition("{")
        if name != "ModelCheckpoint" or not config:
            continue
        mode = ast.literal_eval("{" + config)["mode"]
        best, current = state.get("best_model_score"), state.get("current_score")
        if isinstance(best, torch.Tensor) and isinstance(current, torch.Tensor):
            assert (best <= current) if mode == "min" else (best >= current), f"{key}: best {best} vs current {current}"


def _tensors(obj, prefix=""):
    """Every tensor below ``obj`` as (path, dtype, bytes) so equality is bit-exact."""
    found = []
    if isinstance(obj, torch.Tensor):
        found.append(
            (
                prefix,
                str(obj.dtype),
                obj.detach().reshape(-1).contiguous().view(torch.uint8).tolist() if obj.numel() else [],
            )
        )
    elif isinstance(obj, dict):
        for key, value in obj.items():
            found += _tensors(value, f"{prefix}/{key}")
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            found += _tensors(value, f"{prefix}/{i}")
    return found


# ------------------------------------------------------------------------------ resume
@pytest.mark.parametrize(
    "entry", [p for p in entries("lightning", check="plain_resume") if p.values[0]["resume"] is True]
)
def test_plain_lightning_resumes_the_upgraded_file(entry, upgraded_files, tmp_path):
    result, out = upgraded_files(entry)
    assert result.returncode == 0, result.stderr
    upgraded = torch.load(out, map_location="cpu", weights_only=entry["trust"] is None)
    _resume_and_compare(out, upgraded, tmp_path, callbacks=[], trusted=entry["trust"] is not None)


@pytest.mark.parametrize(
    "entry", [p for p in entries("lightning", check="callback_resume") if p.values[0]["resume"] is True]
)
def test_checkpoint_upgrade_resumes_the_original_file(entry, upgraded_files, tmp_path):
    source = data_file(entry)
    result, out = upgraded_files(entry)
    assert result.returncode == 0, result.stderr
    upgraded = torch.load(out, map_location="cpu", weights_only=entry["trust"] is None)
    callback = CheckpointUpgrade(trust=entry["trust"] is not None, assume_version=entry.get("assume_version"))
    _resume_and_compare(source, upgraded, tmp_path, callbacks=[callback], trusted=entry["trust"] is not None)
    assert sha256(source) == entry["sha256"]


@pytest.mark.parametrize(
    "entry", [p for p in entries("lightning", check="project_callbacks") if p.values[0].get("project_callbacks")]
)
def test_the_projects_own_callbacks_get_their_saved_states(entry, tmp_path):
    """Where the file cannot show a callback's configuration (a pre-1.5 ``mode``), the one its
    project really used (SOURCES.md) is stated: with ``--callback`` the upgraded key must be the
    ``state_key`` Lightning gives that callback, and ``CheckpointUpgrade`` with it live must
    restore the original file's state into it."""
    source, out = data_file(entry), tmp_path / "out.ckpt"
    stated = [arg for spec in entry["project_callbacks"] for arg in ("--callback", spec)]
    result = cli("upgrade", source, "-o", out, *options(entry), *stated)
    assert result.returncode == 0, result.stderr
    upgraded = torch.load(out, map_location="cpu", weights_only=entry["trust"] is None)
    assert sorted(upgraded["callbacks"]) == sorted(
        project_callback(spec).state_key for spec in entry["project_callbacks"]
    )
    callback = CheckpointUpgrade(trust=entry["trust"] is not None, assume_version=entry.get("assume_version"))
    (tmp_path / "run").mkdir()
    _resume_and_compare(source, upgraded, tmp_path / "run", callbacks=[callback], trusted=entry["trust"] is not None)
    assert sha256(source) == entry["sha256"]


def project_callback(spec: str):
    """``Name{json kwargs}`` as the Lightning callback itself, whose ``state_key`` is the oracle."""
    name, _, config = spec.partition("{")
    return getattr(pl.callbacks, name)(**json.loads("{" + config))


def _resume_and_compare(ckpt_path: Path, upgraded: dict, tmp_path: Path, callbacks: list, trusted: bool) -> None:
    """Fit one more batch from ``ckpt_path``; what the Trainer restored must equal ``upgraded``."""
    model = rebuild_module(upgraded)
    live = live_callbacks(upgraded)
    probe = Probe()
    expected_epoch, expected_step = expected_counters(upgraded)
    amp = amp_plugin(upgraded)
    trainer = pl.Trainer(
        max_epochs=expected_epoch + 1,
        limit_train_batches=1,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        callbacks=[*callbacks, *live, probe],
        default_root_dir=tmp_path,
        logger=False,
        enable_checkpointing=bool(live),
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        devices=1,
        plugins=[amp] if amp else None,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # a file whose content needs trust needs it from Lightning's own loader as well
        # (older Lightning has no such argument: it unpickles checkpoints fully)
        extra = (
            {"weights_only": False} if trusted and "weights_only" in inspect.signature(trainer.fit).parameters else {}
        )
        trainer.fit(model, ckpt_path=str(ckpt_path), **extra)
    assert probe.seen is not None, "training did not start: nothing was resumed"
    weights, epoch, step, optimizers, callback_states = probe.seen
    assert (probe.first_epoch, step) == (expected_epoch, expected_step), f"on_train_start saw epoch {epoch}"
    for name, tensor in upgraded["state_dict"].items():
        assert weights[name].dtype == tensor.dtype and torch.equal(weights[name], tensor), name
    saved_optimizers = [o for o in upgraded.get("optimizer_states") or [] if o]
    assert len(optimizers) == len(saved_optimizers)
    for got, want in zip(optimizers, saved_optimizers):
        got_state, want_state = by_position(got), by_position(want)
        assert sorted(got_state) == sorted(want_state)
        for index, saved in want_state.items():
            assert sorted(got_state[index]) == sorted(saved), index
            for key, value in saved.items():
                restored = got_state[index][key]
                if key == "step":  # torch < 1.12 saved an int; torch turns it into a tensor on load
                    assert float(restored) == float(value), (index, key)
                else:
                    assert _same(restored, value), (index, key)
    assert sorted(callback_states) == sorted(cb.state_key for cb in live), "a live callback got no saved state"
    for key, state in callback_states.items():
        want = upgraded["callbacks"][key]
        for field, value in state.items():
            if field == "average_model_state":  # only what was averaged (LazyLayersSWA); a saved key missing fails
                value = {name: tensor for name, tensor in value.items() if name in want[field]}
            assert _same(value, want.get(field)), f"{key}.{field}: {value!r} != {want.get(field)!r}"
    if amp is not None:  # the GradScaler continues from the saved scale and growth tracker
        assert probe.precision_state == upgraded[type(amp).__qualname__], (
            f"GradScaler restored as {probe.precision_state}"
        )
    assert trainer.global_step >= expected_step


def amp_plugin(upgraded: dict):
    """A float16 mixed-precision plugin (with a GradScaler, on CPU) when the file holds one's state,
    as its user resumes with the precision they trained with; ``None`` otherwise."""
    precision = pl.plugins.precision
    cls = getattr(precision, "MixedPrecision", None) or precision.MixedPrecisionPlugin  # the 2.0 - 2.1.0 name
    if cls.__qualname__ not in upgraded:
        return None
    return cls("16-mixed", "cpu", scaler=torch.amp.GradScaler("cpu"))


def _same(a, b) -> bool:
    """Exact equality; tensors by dtype and value, containers element by element."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def by_position(optimizer_state: dict) -> dict:
    """Per-parameter states keyed by the parameter's position in the param groups.

    Older torch releases keyed them by ``id(param)`` at save time (real files here do); newer ones by position.
    """
    order = [p for group in optimizer_state["param_groups"] for p in group["params"]]
    return {order.index(key): value for key, value in optimizer_state["state"].items()}


def expected_counters(upgraded: dict) -> tuple[int, int]:
    """What the upgraded file says the run has done: completed epochs and optimizer steps."""
    fit = upgraded["loops"]["fit_loop"]
    # the first epoch a resume runs: the one after the last whose batches all ran
    epoch = int(fit["epoch_progress"]["current"]["processed"])
    # the rebuilt module optimizes automatically: Lightning's global_step is that loop's step count
    steps = int(fit["epoch_loop.automatic_optimization.optim_progress"]["optimizer"]["step"]["total"]["completed"])
    assert int(upgraded["global_step"]) == steps
    return epoch, steps


class Probe(pl.Callback):
    """Captures what the Trainer restored, before the first new batch changes anything."""

    seen = None

    first_epoch = None

    precision_state = None

    def on_train_epoch_start(self, trainer, pl_module):
        if self.first_epoch is None:
            self.first_epoch = trainer.current_epoch

    def on_train_start(self, trainer, pl_module):
        self.precision_state = copy.deepcopy(trainer.precision_plugin.state_dict())
        callback_states = {}
        for cb in trainer.callbacks:
            fields = RESTORED_FIELDS.get(cb.state_key.partition("{")[0], ())
            if fields:
                restored = copy.deepcopy(cb.state_dict())
                callback_states[cb.state_key] = {k: restored[k] for k in fields if k in restored}
        self.seen = (
            {k: v.detach().clone() for k, v in pl_module.state_dict().items()},
            trainer.current_epoch,
            trainer.global_step,
            [copy.deepcopy(o.state_dict()) for o in trainer.optimizers if o.state_dict().get("param_groups")],
            callback_states,
        )


# What a Trainer restores of each callback (ModelCheckpoint restores best_model_path only when
# its dirpath differs from the saved one, which is the case for files from elsewhere).
# SWA: the averaged model's weights (``n_averaged`` reads 0 until averaging restarts, so it is not compared).
RESTORED_FIELDS = {
    "ModelCheckpoint": ("best_model_path",),
    "EarlyStopping": ("wait_count", "stopped_epoch", "best_score", "patience"),
    "StochasticWeightAveraging": ("latest_update_epoch", "scheduler_state", "average_model_state"),
}


class LazyLayersSWA(pl.callbacks.StochasticWeightAveraging):
    """SWA copies the module at ``setup``; astro-lab builds a layer in its first forward, so the saved
    averaged model lacks it while the rebuilt module has it from the start: the saved weights load
    non-strictly, and every saved key must then be restored exactly (see ``_resume_and_compare``)."""

    @property
    def state_key(self) -> str:
        return "StochasticWeightAveraging"  # the saved key, as for the class the project used

    def _load_average_model_state(self, model_state):
        if self._average_model is not None:
            assert self._average_model.load_state_dict(model_state, strict=False).unexpected_keys == []


def live_callbacks(upgraded: dict) -> list:
    """The callbacks a user of the file has: built from the configuration in each state key."""
    live = []
    for key in upgraded.get("callbacks") or {}:
        name, _, config = str(key).partition("{")
        if name == "StochasticWeightAveraging":  # its state_key is its class name; swa_lrs acts once averaging starts
            live.append(LazyLayersSWA(swa_lrs=1e-3))
        if not config:  # no configuration known: no user could state it (listed as unkeyable)
            continue
        kwargs = ast.literal_eval("{" + config) if config else {}
        if name == "ModelCheckpoint":
            live.append(pl.callbacks.ModelCheckpoint(save_top_k=0, **kwargs))
        elif name == "EarlyStopping":
            live.append(pl.callbacks.EarlyStopping(strict=False, **kwargs))
    return live


def rebuild_module(checkpoint: dict):
    """A LightningModule whose parameters and buffers are the state_dict's names, shapes and dtypes.

    Parameters are the floating tensors the saved optimizer steps (their count and per-parameter
    state shapes must agree); everything else is a buffer. The optimizer is the saved one's class,
    with the saved param groups' sizes, so ``load_state_dict`` accepts the saved state.
    """
    state_dict = checkpoint["state_dict"]
    optimizers = [o for o in checkpoint.get("optimizer_states") or [] if o.get("param_groups")]
    assert len(optimizers) <= 1, "one optimizer per file in this corpus"
    groups = optimizers[0]["param_groups"] if optimizers else []
    n_params = sum(len(g["params"]) for g in groups)
    shared = aliases(state_dict)
    floats = [
        k
        for k, v in state_dict.items()
        if k not in shared and v.is_floating_point() and not k.endswith(("running_mean", "running_var"))
    ]
    param_groups = optimized_names(floats, state_dict, optimizers[0]) if n_params else []
    params = [name for group in param_groups for name in group]
    assert len(params) == n_params, f"{len(floats)} floating tensors, {n_params} optimized parameters"

    class Rebuilt(pl.LightningModule):
        def __init__(self):
            super().__init__()
            made = {}
            for name, tensor in state_dict.items():
                owner = self
                *path, leaf = name.split(".")
                for part in path:
                    if part not in owner._modules:
                        owner.add_module(part, torch.nn.Module())
                    owner = owner._modules[part]
                if name in shared:  # the same object under a second name, as in the saving model
                    value = made[shared[name]]
                else:
                    blank = torch.zeros_like(tensor)
                    value = made[name] = torch.nn.Parameter(blank) if name in params else blank
                if isinstance(value, torch.nn.Parameter):
                    owner.register_parameter(leaf, value)
                else:
                    owner.register_buffer(leaf, value)

        def training_step(self, batch, batch_idx):
            loss = sum((p.float() ** 2).mean() for p in self.parameters()) * batch[0].mean()
            return loss if params else None

        def configure_optimizers(self):
            if not groups:
                return None
            named = dict(self.named_parameters())
            built = [{"params": [named[name] for name in group]} for group in param_groups]
            return optimizer_class(groups[0])(built, lr=float(groups[0]["lr"]))

        def train_dataloader(self):
            return DataLoader(TensorDataset(torch.ones(2, 1)), batch_size=1)

    return Rebuilt()


def aliases(state_dict: dict) -> dict:
    """name -> the first name holding the same tensor (a module shared under two names)."""
    first, found = {}, {}
    for name, tensor in state_dict.items():
        key = (
            tensor.untyped_storage().data_ptr(),
            tensor.storage_offset(),
            tuple(tensor.shape),
            tuple(tensor.stride()),
        )
        found[name] = first.setdefault(key, name)
    return {name: owner for name, owner in found.items() if name != owner}


def optimized_names(floats: list, state_dict: dict, optimizer: dict) -> list:
    """The state_dict entries the optimizer steps: one list of names per param group, in order.

    First the one ordered choice of floating tensors, taken group after group, that fits the
    saved per-parameter state: each state tensor's shape, or for LBFGS the flat vectors (``d``,
    ``prev_flat_grad``) whose length is the parameters' total size. Real modules also leave
    parameters out of the optimizer (built lazily, frozen) and split them into groups by name
    (no weight decay for biases): then each saved position gets a tensor of its state's shape,
    and a position without state (never stepped, or every step skipped by the AMP scaler) any
    tensor left. Which of several same-shaped tensors it is changes nothing the resume compares
    (weights by name, optimizer state by position).
    """
    sizes = [len(g["params"]) for g in optimizer["param_groups"]]
    n = sum(sizes)
    states = by_position(optimizer)
    lbfgs = "history_size" in optimizer["param_groups"][0]

    def chunked(names) -> list:
        starts = list(itertools.accumulate([0, *sizes]))
        return [list(names[a:b]) for a, b in zip(starts, starts[1:])]

    def fits(names) -> bool:
        total = sum(state_dict[k].numel() for k in names)
        for index, state in states.items():
            for value in state.values():
                if not isinstance(value, torch.Tensor) or not value.dim():
                    continue
                if value.shape != ((total,) if lbfgs else state_dict[names[index]].shape):  # LBFGS keeps flat vectors
                    return False
        return True

    if len(floats) == n and fits(floats):
        return chunked(floats)
    if len(floats) - n <= 3:
        found = [list(names) for names in itertools.combinations(floats, n) if fits(names)]
        if len(found) == 1:
            return chunked(found[0])
    assert not lbfgs, "LBFGS state fits no ordered choice of parameters"
    return _match_groups(floats, state_dict, sizes, states)


def _match_groups(floats: list, state_dict: dict, sizes: list, states: dict) -> list:
    """Each position with state gets the first unused float of its state's shape (in state_dict
    order), then each position without state the first unused float left; grouped as saved."""
    n = sum(sizes)
    chosen: dict[int, str] = {}
    for index in sorted(states):
        shapes = {tuple(v.shape) for v in states[index].values() if isinstance(v, torch.Tensor) and v.dim()}
        assert len(shapes) <= 1, f"position {index}: state tensors of several shapes {shapes}"
        if shapes:
            free = [k for k in floats if k not in chosen.values() and tuple(state_dict[k].shape) in shapes]
            assert free, f"no parameter fits the saved state of position {index}"
            chosen[index] = free[0]
    left = iter(k for k in floats if k not in chosen.values())
    for index in range(n):
        if index not in chosen:
            chosen[index] = next(left)
    starts = list(itertools.accumulate([0, *sizes]))
    return [[chosen[i] for i in range(a, b)] for a, b in zip(starts, starts[1:])]


def optimizer_class(group: dict):
    """The torch optimizer whose param-group keys the saved group has."""
    if "betas" in group:
        return torch.optim.AdamW if group.get("weight_decay", 0) and "amsgrad" in group else torch.optim.Adam
    if "momentum" in group and "dampening" in group:
        return torch.optim.SGD
    if "alpha" in group and "centered" in group:
        return torch.optim.RMSprop
    if "history_size" in group and "line_search_fn" in group:
        return torch.optim.LBFGS
    if "lr_decay" in group:
        return torch.optim.Adagrad
    raise AssertionError(f"no optimizer known for param group keys {sorted(group)}")


# ------------------------------------------------------------------------------ refused files
@pytest.mark.parametrize("entry", entries("refuse", "foreign-classes", check="refuse"))
def test_refused_without_trust_and_unchanged(entry, tmp_path):
    """inspect, upgrade -o and upgrade --in-place all refuse; the file (a copy: --in-place must not
    get a chance at the committed one) keeps its bytes and gains no neighbour (no backup, no temp)."""
    folder = tmp_path / "in"
    folder.mkdir()
    source = folder / entry["file"]
    shutil.copyfile(data_file(entry), source)
    out = tmp_path / "out.ckpt"
    for command in (("inspect", source), ("upgrade", source, "-o", out), ("upgrade", source, "--in-place")):
        result = cli(*command)
        assert result.returncode == entry["exit_code"], (command, result.stderr)
        assert "Traceback" not in result.stderr
        for text in entry["stderr_contains"]:
            assert text in result.stderr
    assert sha256(source) == entry["sha256"]
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == ["in", f"in/{entry['file']}"]


TRUSTED_REFUSAL = {3: "not a Lightning checkpoint", 5: "not a readable torch checkpoint"}


@pytest.mark.parametrize("entry", entries("refuse", check="trusted_refuse"))
def test_refused_even_when_trusted(entry, tmp_path):
    """Trust only lifts the pickle allowlist: a file that is not Lightning is still refused."""
    source = data_file(entry)
    result = cli("upgrade", source, "--trust", "-o", tmp_path / "out.ckpt")
    assert result.returncode == entry["exit_code_trusted"], result.stderr
    assert TRUSTED_REFUSAL[entry["exit_code_trusted"]] in result.stderr
    assert sha256(source) == entry["sha256"] and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("entry", entries("foreign-classes", check="trusted_upgrade"))
def test_trusted_upgrade_without_the_projects_classes_is_a_named_error(entry, tmp_path):
    """``--trust`` cannot import a project that is not installed: a named error, never a traceback."""
    source = data_file(entry)
    result = cli("upgrade", source, "--trust", "-o", tmp_path / "out.ckpt")
    assert result.returncode == entry["exit_code_trusted"] == 10, result.stderr  # MissingGlobal
    missing = entry["stderr_contains"][0].split(".")[0]
    assert f"No module named '{missing}'" in result.stderr
    assert sha256(source) == entry["sha256"] and list(tmp_path.iterdir()) == []
