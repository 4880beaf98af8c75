"""How much an upgrade costs next to copying the file: wall time and peak memory, measured in one run.

Builds a synthetic Lightning 1.5.10 checkpoint (``--size-gb`` of float32 weights and Adam states),
then runs each contender in its own subprocess and reads that child's peak RSS from ``wait4``:

* copy + fsync (the floor: any upgrade must at least write the file once) and ``cp`` without fsync;
* ``ckpt-compat upgrade IN -o OUT`` (carry-over: tensor records are copied, never loaded);
* ``ckpt-compat upgrade COPY --in-place`` (with its backup) and Lightning's
  ``python -m lightning.pytorch.utilities.upgrade_checkpoint COPY`` (also writes a backup);
* ``torch.load(mmap=True)`` + ``torch.save`` + fsync (what a naive upgrade does);
* the same upgrade of a legacy (pre-zip, torch < 1.6 format) file, which cannot be memory-mapped;
* ``upgrade()`` on a loaded checkpoint against the ``torch.load`` that produced it;
* a fake FSDP folder (``meta.pt`` + one big shard) with a small and a large shard.

All timings are warm page cache (the input was just written) and ratios are taken within this run.

    python benchmarks/bench_upgrade.py [--size-gb 2] [--quick] [--repeat 1] [--out FILE]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

MIB = 1 << 20
PY = sys.executable

COPY_FSYNC = """
import os, shutil, sys
shutil.copyfile(sys.argv[1], sys.argv[2])
fd = os.open(sys.argv[2], os.O_RDONLY); os.fsync(fd); os.close(fd)
"""

MMAP_LOAD_SAVE = """
import os, sys, torch
ckpt = torch.load(sys.argv[1], mmap=True, weights_only=True, map_location="cpu")
ckpt["pytorch-lightning_version"] = "2.6.6"
torch.save(ckpt, sys.argv[2])
fd = os.open(sys.argv[2], os.O_RDONLY); os.fsync(fd); os.close(fd)
"""

# Used only where the CLI is not there: the same flow through the public API.
API_UPGRADE = """
import sys
from pytest_ckpt_compat import load_checkpoint, save_checkpoint, upgrade
ckpt = load_checkpoint(sys.argv[1])
upgrade(ckpt)
save_checkpoint(ckpt, sys.argv[2], source=sys.argv[1])
"""

IN_MEMORY = """
import json, sys, time, torch
from pytest_ckpt_compat import upgrade
t0 = time.perf_counter()
ckpt = torch.load(sys.argv[1], weights_only=True, map_location="cpu")
t1 = time.perf_counter()
upgrade(ckpt)
t2 = time.perf_counter()
again = torch.load(sys.argv[1], mmap=True, weights_only=True, map_location="cpu")
t3 = time.perf_counter()
upgrade(again)
t4 = time.perf_counter()
version = ckpt["pytorch-lightning_version"]
print(json.dumps({"load_s": t1 - t0, "upgrade_s": t2 - t1, "second_upgrade_s": t4 - t3, "version": version}))
"""

VERIFY = """
import sys, torch
a = torch.load(sys.argv[1], mmap=True, weights_only=True, map_location="cpu")
b = torch.load(sys.argv[2], mmap=True, weights_only=True, map_location="cpu")
ok = a["state_dict"].keys() == b["state_dict"].keys()
ok = ok and all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
sa, sb = a["optimizer_states"][0]["state"], b["optimizer_states"][0]["state"]
ok = ok and all(torch.equal(sa[i][k], sb[i][k]) for i in sa for k in ("exp_avg", "exp_avg_sq"))
ok = ok and b["pytorch-lightning_version"] != a["pytorch-lightning_version"]
print("OK" if ok else "MISMATCH")
"""


# Peak RSS must be read by a *small* parent: a child forked (or vforked) from this big benchmark
# process starts with our high-water mark, so a plain wait4 here would report at least our size.
LAUNCH = """
import json, os, sys, time
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
with open(sys.argv[1], "w") as fh:
    json.dump({"wall": wall, "maxrss_kib": usage.ru_maxrss, "code": os.waitstatus_to_exitcode(status)}, fh)
"""


@dataclass
class Run:
    wall: float
    rss: int  # bytes
    out: str


def run(cmd: list[str], work: Path, *, repeat: int = 1, before=None, env=None) -> Run:
    """Best of ``repeat`` runs of ``cmd``: wall time and peak RSS of that child (and its descendants)."""
    best: Run | None = None
    stats = work / "stats.json"
    for _ in range(repeat):
        if before is not None:
            before()
        os.sync()  # earlier runs' dirty pages must not be flushed on this run's clock
        with open(work / "stdout", "w+b") as out, open(work / "stderr", "w+b") as err:
            subprocess.run([PY, "-c", LAUNCH, str(stats), *cmd], stdout=out, stderr=err, env=env, check=False)
            out.seek(0)
            err.seek(0)
            text, errors = out.read().decode(errors="replace"), err.read().decode(errors="replace")
        measured = json.loads(stats.read_text())
        if measured["code"] != 0:
            raise RuntimeError(f"{cmd} failed ({measured['code']}):\n{text}\n{errors}")
        result = Run(measured["wall"], measured["maxrss_kib"] * 1024, text)  # ru_maxrss is KiB on Linux
        if best is None or result.wall < best.wall:
            best = result
    assert best is not None
    return best


def make_checkpoint(size_bytes: int):
    """A Lightning 1.5.10-style checkpoint: weights + Adam exp_avg/exp_avg_sq, a third of the size each."""
    import torch

    per_tensor = 32 * MIB
    layers = max(1, round(size_bytes / 3 / per_tensor))
    numel = per_tensor // 4
    gen = torch.Generator().manual_seed(0)
    state_dict = collections.OrderedDict()
    optim_state = {}
    for i in range(layers):
        state_dict[f"model.layers.{i}.weight"] = torch.rand(numel // 1024, 1024, generator=gen)
        state_dict[f"model.layers.{i}.bias"] = torch.rand(1024, generator=gen)
    for j, tensor in enumerate(state_dict.values()):
        optim_state[j] = {"step": 5000, "exp_avg": torch.rand_like(tensor), "exp_avg_sq": torch.rand_like(tensor)}
    state_dict._metadata = collections.OrderedDict({"": {"version": 1}})
    return {
        "epoch": 4,
        "global_step": 5000,
        "pytorch-lightning_version": "1.5.10",
        "state_dict": state_dict,
        "callbacks": {
            "ModelCheckpoint{'monitor': 'val_loss', 'mode': 'min', 'every_n_train_steps': 0, 'every_n_epochs': 1, "
            "'train_time_interval': None, 'save_on_train_epoch_end': True}": {
                "monitor": "val_loss",
                "best_model_score": torch.tensor(0.125),
                "best_model_path": "checkpoints/epoch=3-step=4000.ckpt",
                "current_score": torch.tensor(0.125),
                "dirpath": "checkpoints",
            },
            "EarlyStopping{'monitor': 'val_loss', 'mode': 'min'}": {
                "wait_count": 1,
                "stopped_epoch": 0,
                "best_score": torch.tensor(0.125),
                "patience": 3,
            },
        },
        "optimizer_states": [
            {
                "state": optim_state,
                "param_groups": [
                    {
                        "lr": 1e-3,
                        "betas": (0.9, 0.999),
                        "eps": 1e-8,
                        "weight_decay": 0.0,
                        "amsgrad": False,
                        "params": list(optim_state),
                    }
                ],
            }
        ],
        "lr_schedulers": [
            {"step_size": 10, "gamma": 0.1, "base_lrs": [1e-3], "last_epoch": 4, "_step_count": 5, "_last_lr": [1e-3]}
        ],
        "hparams_name": "kwargs",
        "hyper_parameters": {"hidden": 1024, "layers": layers, "lr": 1e-3},
    }


def make_sharded(folder: Path, meta: dict, shard_bytes: int) -> None:
    """A fake FSDP checkpoint folder: small ``meta.pt`` plus one big shard that only torch.distributed reads."""
    import torch

    folder.mkdir()
    torch.save(meta, folder / "meta.pt")
    block = bytes(8 * MIB)
    with open(folder / "__0_0.distcp", "wb") as fh:
        left = shard_bytes
        while left > 0:
            fh.write(block[: min(left, len(block))])
            left -= len(block)
    (folder / ".metadata").write_bytes(b"fake torch.distributed metadata")


def upgrade_cmd(work: Path) -> list[str]:
    """The CLI when it exists, otherwise the same flow through the public API."""
    try:
        import pytest_ckpt_compat.cli  # noqa: F401

        return [PY, "-m", "pytest_ckpt_compat.cli", "upgrade"]
    except ImportError:
        script = work / "api_upgrade.py"
        script.write_text(API_UPGRADE)
        return [PY, str(script)]


def lightning_upgrade_module() -> str | None:
    import importlib.util

    for name in ("lightning.pytorch.utilities.upgrade_checkpoint", "pytorch_lightning.utilities.upgrade_checkpoint"):
        try:
            if importlib.util.find_spec(name) is not None:
                return name
        except ModuleNotFoundError:
            continue
    return None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gb", type=float, default=2.0, help="checkpoint size in GiB (default 2)")
    parser.add_argument("--quick", action="store_true", help="a 0.25 GiB checkpoint and small shards, for a smoke run")
    parser.add_argument("--repeat", type=int, default=1, help="best of N runs per contender (default 1)")
    parser.add_argument("--workdir", type=Path, default=None, help="where to put the temp files (default: system temp)")
    parser.add_argument("--out", type=Path, default=None, help="also write the report to this file")
    args = parser.parse_args(argv)
    size = int((0.25 if args.quick else args.size_gb) * (1 << 30))
    shard_sizes = (10 * MIB, 200 * MIB) if args.quick else (100 * MIB, 2048 * MIB)

    import torch

    work = Path(tempfile.mkdtemp(prefix="ckpt-compat-bench-", dir=args.workdir))
    lines: list[str] = []

    def say(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    try:
        src, out = work / "model.ckpt", work / "out.ckpt"
        ckpt = make_checkpoint(size)
        torch.save(ckpt, src)
        legacy = work / "legacy.ckpt"
        torch.save(ckpt, legacy, _use_new_zipfile_serialization=False)
        meta = {k: v for k, v in ckpt.items() if k not in ("state_dict", "optimizer_states")}
        del ckpt
        file_size = src.stat().st_size
        cli = upgrade_cmd(work)

        def drop(*paths: Path):
            def before():
                for p in paths:
                    if p.is_dir():
                        shutil.rmtree(p)
                    elif p.exists():
                        p.unlink()

            return before

        def fresh_copy(copy: Path, *extra: Path):
            def before():
                drop(copy, *extra)()
                shutil.copyfile(src, copy)

            return before

        say(
            f"checkpoint: {file_size / MIB:.0f} MiB zip ({len(meta)} metadata keys, Lightning 1.5.10 -> installed), "
            f"torch {torch.__version__}, python {sys.version.split()[0]}, {os.cpu_count()} CPUs; warm page cache"
        )
        say(f"upgrade command: {' '.join(Path(c).name if i == 0 else c for i, c in enumerate(cli))} ...")
        say()

        results: dict[str, Run] = {}
        results["copy + fsync (floor)"] = run(
            [PY, "-c", COPY_FSYNC, str(src), str(out)], work, repeat=args.repeat, before=drop(out)
        )
        results["cp (no fsync)"] = run(["cp", str(src), str(out)], work, repeat=args.repeat, before=drop(out))
        startup = run([PY, "-c", "import pytest_ckpt_compat.cli, torch"], work, repeat=max(3, args.repeat))
        results["python + torch startup"] = startup
        results["ckpt-compat upgrade -o OUT"] = run(
            cli + [str(src), "-o", str(out)], work, repeat=args.repeat, before=drop(out)
        )
        verified = run([PY, "-c", VERIFY, str(src), str(out)], work).out.strip()
        copy = work / "copy.ckpt"
        results["ckpt-compat upgrade --in-place (+.bak)"] = run(
            cli + [str(copy), "--in-place"], work, repeat=args.repeat, before=fresh_copy(copy, work / "copy.ckpt.bak")
        )
        module = lightning_upgrade_module()
        if module:
            results["lightning upgrade_checkpoint (+.bak)"] = run(
                [PY, "-m", module, str(copy)], work, repeat=args.repeat, before=fresh_copy(copy, work / "copy.bak")
            )
        drop(copy, work / "copy.bak", work / "copy.ckpt.bak")()
        results["torch.load(mmap) + torch.save + fsync"] = run(
            [PY, "-c", MMAP_LOAD_SAVE, str(src), str(out)], work, repeat=args.repeat, before=drop(out)
        )
        results["ckpt-compat upgrade -o OUT, legacy file"] = run(
            cli + [str(legacy), "-o", str(out)], work, repeat=args.repeat, before=drop(out)
        )
        drop(out, legacy)()

        floor = results["copy + fsync (floor)"]
        say(
            f"{'contender':<42}{'wall s':>8}{'x copy':>8}{'net x copy':>11}"
            f"{'peak RSS MiB':>14}{'RSS/file':>10}{'net RSS MiB':>13}"
        )
        for name, r in results.items():
            net_wall = (
                max(r.wall - startup.wall, 0.0) if r is not startup and not name.startswith(("copy", "cp")) else r.wall
            )
            net_rss = max(r.rss - startup.rss, 0) if not name.startswith(("copy", "cp")) else r.rss
            say(
                f"{name:<42}{r.wall:8.2f}{r.wall / floor.wall:8.2f}{net_wall / floor.wall:11.2f}"
                f"{r.rss / MIB:14.0f}{r.rss / file_size:10.3f}{net_rss / MIB:13.0f}"
            )
        say("  net = minus the python + torch startup row (import time and the ~220 MiB torch itself maps)")
        say()

        up = results["ckpt-compat upgrade -o OUT"]
        say(f"output of ckpt-compat upgrade -o: tensors equal to the input: {verified}")
        say(
            f"target wall <= 1.5x copy:   upgrade {up.wall / floor.wall:.2f}x (net of startup "
            f"{(up.wall - startup.wall) / floor.wall:.2f}x)"
        )
        say(
            f"target RSS  <= 0.1x file:   upgrade {up.rss / file_size:.3f}x (net of startup "
            f"{(up.rss - startup.rss) / file_size:.4f}x)"
        )
        legacy_run = results["ckpt-compat upgrade -o OUT, legacy file"]
        say(
            f"legacy (pre-zip) file:      {legacy_run.wall / up.wall:.2f}x the zip upgrade's wall time, "
            f"RSS {legacy_run.rss / file_size:.2f}x file (no mmap: tensors are read into memory and re-serialised)"
        )
        if "lightning upgrade_checkpoint (+.bak)" in results:
            lt, ip = results["lightning upgrade_checkpoint (+.bak)"], results["ckpt-compat upgrade --in-place (+.bak)"]
            say(
                f"in place, both with backup: ckpt-compat {ip.wall:.2f} s / {ip.rss / MIB:.0f} MiB vs "
                f"Lightning {lt.wall:.2f} s / {lt.rss / MIB:.0f} MiB ({lt.wall / ip.wall:.2f}x the time, "
                f"{lt.rss / ip.rss:.1f}x the memory)"
            )
        say()

        mem = json.loads(run([PY, "-c", IN_MEMORY, str(src)], work).out.strip().splitlines()[-1])
        say(
            f"upgrade() on a loaded checkpoint: {mem['upgrade_s'] * 1e3:.1f} ms vs torch.load {mem['load_s']:.2f} s "
            f"= {100 * mem['upgrade_s'] / mem['load_s']:.2f}% (target <= 1%); stamped {mem['version']}"
        )
        say(
            f"  (first call includes finding and importing the catalogue; a second call in the same process: "
            f"{mem['second_upgrade_s'] * 1e3:.1f} ms = {100 * mem['second_upgrade_s'] / mem['load_s']:.2f}%)"
        )
        say()

        shard_runs = []
        for shard in shard_sizes:
            folder = work / f"sharded-{shard // MIB}MiB"

            def remake(folder=folder, shard=shard):
                drop(folder)()
                make_sharded(folder, meta, shard)

            shard_runs.append(
                (shard, run(cli + [str(folder), "--in-place"], work, repeat=max(3, args.repeat), before=remake))
            )
            drop(folder)()
        (small, r_small), (large, r_large) = shard_runs
        say(
            f"sharded folder (meta.pt + shard), in-place upgrade: {small // MIB} MiB shard {r_small.wall:.2f} s, "
            f"{large // MIB} MiB shard {r_large.wall:.2f} s -> ratio {r_large.wall / r_small.wall:.2f} "
            f"(1.00 = independent of shard size); peak RSS {r_small.rss / MIB:.0f} / {r_large.rss / MIB:.0f} MiB"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
