"""Safe loading: torch's ``weights_only`` allow-list plus a small, curated one of ours.

Old Lightning files pickle a few of Lightning's own globals: callback *classes* as dict keys
(0.10 – 1.4) and ``AttributeDict`` hyperparameters (0.8 – 1.0.7). The allowlist maps exactly those
names, under both namespaces (``pytorch_lightning.*`` and ``lightning.pytorch.*``), to inert
stand-ins: a marker class that only carries the pickled name, and the builtin ``dict``. Nothing is
imported from the names in the file, so loading needs neither namespace installed and runs no
code. numpy arrays, dtypes and scalars (1.4/1.5 fault-tolerant RNG states, schedulers that keep
arrays) are data: numpy's reconstruct/dtype globals are allowed, as torch's serialization notes
recommend for ``weights_only``. Everything else (user classes, OmegaConf, argparse helpers,
arbitrary objects) needs ``trust=True``, which unpickles normally (with Lightning's legacy shims and
a namespace redirect).

Why our own Unpickler and not ``torch.serialization.safe_globals``: that context manager edits one
process-wide set, so two threads loading at once remove each other's entries mid-load (and a lock
of ours would not protect against anybody else's ``safe_globals``). Instead each load passes an
explicit, immutable table to a ``pickle.Unpickler`` whose ``find_class`` resolves only names in it
(the restriction the ``pickle`` documentation gives for untrusted data); the table is torch's own
``weights_only`` table plus ours (plus anything registered with ``add_safe_globals``). Nothing
process-wide is written, so loads are thread-safe. Trusted loads likewise resolve Lightning's
legacy shims in their ``find_class`` instead of entering Lightning's ``pl_legacy_patch``, which takes
a non-reentrant process lock that the Trainer already holds while it loads a checkpoint.

Sharded checkpoints are directories: only their small metadata file is read (``meta.pt`` for
FSDP/ModelParallel, ``checkpoint/mp_rank_00_model_states.pt`` for DeepSpeed).
"""

from __future__ import annotations

import _compat_pickle
import contextlib
import enum
import functools
import os
import pickle
import re
from pathlib import Path
from types import MappingProxyType
from typing import Any

import torch

from ..core.errors import (
    CheckpointNotFound,
    CorruptCheckpoint,
    MissingGlobal,
    NotALightningCheckpoint,
    UnsafeCheckpoint,
)
from ..core.versions import LIGHTNING_MODULES
from . import formats, pickles
from .writing import sources
from .writing.atomic import open_regular

_NAMESPACES = LIGHTNING_MODULES

# Lightning's built-in callbacks whose *class* was pickled as a ``callbacks`` key (0.10 – 1.4).
_CALLBACK_CLASSES = (
    "callbacks.model_checkpoint.ModelCheckpoint",
    "callbacks.early_stopping.EarlyStopping",
    "callbacks.lr_monitor.LearningRateMonitor",
    "callbacks.gpu_stats_monitor.GPUStatsMonitor",
    "callbacks.gradient_accumulation_scheduler.GradientAccumulationScheduler",
    "callbacks.progress.ProgressBar",
    "callbacks.progress.ProgressBarBase",
    "callbacks.progress.tqdm_progress.TQDMProgressBar",
    "callbacks.stochastic_weight_avg.StochasticWeightAveraging",
    "callbacks.timer.Timer",
    "callbacks.finetuning.BackboneFinetuning",
    "callbacks.finetuning.BaseFinetuning",
    "callbacks.pruning.ModelPruning",
    "callbacks.quantization.QuantizationAwareTraining",
    "callbacks.lambda_function.LambdaCallback",
    "callbacks.base.Callback",
    "callbacks.callback.Callback",
)
# Pickled ``AttributeDict`` hyperparameters are a plain dict subclass with no instance state.
_DICT_CLASSES = ("utilities.parsing.AttributeDict",)
_FABRIC_DICT_CLASSES = (
    "lightning.fabric.utilities.data.AttributeDict",
    "lightning_fabric.utilities.data.AttributeDict",
)


class LegacyClassRef(type):
    """Metaclass of the stand-ins for pickled callback classes: they carry the pickled name only."""

    def __repr__(cls) -> str:
        return f"<pickled class {cls.__module__}.{cls.__qualname__}>"


@functools.cache
def legacy_class_ref(module: str, qualname: str) -> type:
    """The (cached) stand-in class for ``module.qualname``."""
    ref = LegacyClassRef(qualname.rsplit(".", 1)[-1], (), {"__module__": module, "__qualname__": qualname})
    return ref


@functools.cache
def allowlist() -> tuple:
    """``(object, "pickled.name")`` pairs of ours: Lightning stand-ins, numpy data, 1.5 metric reductions."""
    pairs: list[tuple[Any, str]] = []
    for namespace in _NAMESPACES:
        for suffix in _CALLBACK_CLASSES:
            module, _, name = f"{namespace}.{suffix}".rpartition(".")
            pairs.append((legacy_class_ref(module, name), f"{module}.{name}"))
        for suffix in _DICT_CLASSES:
            pairs.append((dict, f"{namespace}.{suffix}"))
    pairs.extend((dict, name) for name in _FABRIC_DICT_CLASSES)
    pairs.extend(numpy_globals())
    # 1.4/1.5 fault-tolerant loop results pickle their metrics' reductions as
    # ``getattr(torch._C._VariableFunctionsClass, "sum")``: a marker owner and a getattr that only
    # answers that owner with inert function names (the loop results are dropped by the 2.0 unit).
    pairs.append((_TORCH_FUNCTIONS, "torch._C._VariableFunctionsClass"))
    pairs.append((_torch_function_ref, "builtins.getattr"))
    return tuple(pairs)


def numpy_globals() -> tuple:
    """``(object, name)`` pairs that rebuild numpy arrays, dtypes and scalars (data, not code).

    The globals torch's serialization notes name for loading numpy data with ``weights_only``:
    ``_reconstruct``, ``ndarray``, ``dtype`` and the dtype classes (numpy >= 1.25), plus ``scalar``,
    under both spellings of numpy's core module (``numpy.core`` before 2.0, ``numpy._core`` since).
    ``torch.serialization.safe_globals(list(numpy_globals()))`` makes plain ``torch.load`` read them.
    """
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy is a torch dependency in practice
        return ()
    multiarray = np.ndarray.__reduce__(np.zeros(0))[0]  # the real _reconstruct, wherever numpy keeps it
    scalar = np.float64(0).__reduce__()[0]
    pairs: list[tuple[Any, str]] = [(np.ndarray, "numpy.ndarray"), (np.dtype, "numpy.dtype")]
    for core in ("numpy.core.multiarray", "numpy._core.multiarray"):
        pairs += [(multiarray, f"{core}._reconstruct"), (scalar, f"{core}.scalar")]
    dtypes = getattr(np, "dtypes", None)
    for name in getattr(dtypes, "__all__", ()):
        cls = getattr(dtypes, name)
        if isinstance(cls, type) and issubclass(cls, np.dtype):
            pairs.append((cls, f"numpy.dtypes.{name}"))
    return tuple(pairs)


class _TorchFunctions:
    """Stand-in for ``torch._C._VariableFunctionsClass`` (the owner of ``torch.sum`` & co.)."""

    def __repr__(self) -> str:
        return "<pickled torch._C._VariableFunctionsClass>"


_TORCH_FUNCTIONS = _TorchFunctions()
_REDUCTIONS = frozenset({"sum", "mean", "max", "min", "prod", "std", "var", "median", "amax", "amin"})


def _torch_function_ref(owner: Any, name: Any) -> type:
    """``getattr`` for safe loads: only ``torch.<reduction>`` on the stand-in owner, as an inert marker."""
    if owner is _TORCH_FUNCTIONS and isinstance(name, str) and name in _REDUCTIONS:
        return legacy_class_ref("torch", name)
    raise pickle.UnpicklingError(
        f"Unsupported global: GLOBAL builtins.getattr on {owner!r}, {name!r} (only torch reductions are allowed)"
    )


def _safe_table() -> MappingProxyType:
    """The names a safe load may resolve: torch's weights_only table, registered ones, ours (immutable)."""
    from torch import _weights_only_unpickler as wou

    table = dict(_torch_table())
    with contextlib.suppress(Exception):  # anything the user registered with torch.serialization.add_safe_globals
        table.update(wou._get_user_allowed_globals())
    table.update(_our_table())
    return MappingProxyType(table)


@functools.cache
def _torch_table() -> MappingProxyType:
    from torch import _weights_only_unpickler as wou

    return MappingProxyType(dict(wou._get_allowed_globals()))


@functools.cache
def _our_table() -> MappingProxyType:
    return MappingProxyType(
        {**{name: obj for obj, name in allowlist()}, "builtins.bytearray": pickles.bounded_bytearray}
    )


# The small metadata file of each sharded layout: FSDP/ModelParallel, DeepSpeed.
SHARDED_METADATA = ("meta.pt", "checkpoint/mp_rank_00_model_states.pt")


def sharded_metadata(path: str | os.PathLike) -> Path | None:
    """The metadata file if ``path`` is a sharded checkpoint folder, else ``None`` (the one detector)."""
    path = Path(path)
    return next((path / name for name in SHARDED_METADATA if (path / name).is_file()), None) if path.is_dir() else None


def checkpoint_file(path: str | os.PathLike) -> Path:
    """The file that holds a checkpoint's Lightning state (the metadata file of a sharded directory)."""
    path = Path(path)
    if not path.is_dir():
        return path
    found = sharded_metadata(path)
    if found is not None:
        return found
    raise CorruptCheckpoint(
        f"{path} is a directory but not a sharded Lightning checkpoint: no meta.pt (FSDP/ModelParallel) "
        "and no checkpoint/mp_rank_00_model_states.pt (DeepSpeed)"
    )


def is_zip_checkpoint(path: str | os.PathLike) -> bool:
    with open(open_regular(path), "rb") as fh:
        return fh.read(4) == b"PK\x03\x04"


def load_checkpoint(path: str | os.PathLike, *, trust: bool = False, map_location: Any = "cpu") -> dict:
    """Load a checkpoint file (or a sharded directory's metadata) without running pickled code.

    Zip-format files are memory-mapped, so tensors are not read until used and the writer can
    carry their records over unchanged. ``trust=True`` allows arbitrary globals: use it only for
    files whose origin you trust (or that passed a hash check). Only regular files are opened
    (``NotARegularFile`` otherwise); the container is checked before torch reads it
    (``pickles``); a file of another format (MindSpore, NumPy, a Git LFS pointer: ``formats``)
    is ``NotALightningCheckpoint``, and any other failure ``CorruptCheckpoint`` or ``UnsafeCheckpoint``.
    """
    file = checkpoint_file(path)
    name = os.fsdecode(file)
    try:
        fd = open_regular(file)
    except FileNotFoundError:
        raise CheckpointNotFound(f"no such checkpoint: {name}") from None
    with open(fd, "rb") as fh:
        st = os.fstat(fd)
        if st.st_size == 0:
            raise CorruptCheckpoint(f"{name} is empty")
        zipped = os.pread(fd, 4, 0) == b"PK\x03\x04"
        if zipped:
            pickles.check_archive(fh, name)
        else:
            try:
                pickles.check_legacy(fd, name)
            except pickles.NoTorchMagic:
                foreign = formats.identify(fd, st.st_size)
                if foreign is None:
                    raise
                raise NotALightningCheckpoint(found=f"{name} is not a torch file but {foreign}") from None
        # torch opens the very file we checked (no path race), whatever bytes its name holds
        source = f"/proc/self/fd/{fd}" if os.path.isdir("/proc/self/fd") else file
        checkpoint = _load(source, name, zipped, trust, map_location)
        if zipped:
            sources.remember(file, st)
        return checkpoint


def _load(source: Any, name: str, zipped: bool, trust: bool, map_location: Any) -> Any:
    pickle_module = _RedirectingPickleModule() if trust else _SafePickleModule(_safe_table())
    try:
        # weights_only=False only because an explicit pickle_module carries the restriction (see above)
        return torch.load(
            source, map_location=map_location, weights_only=False, pickle_module=pickle_module, mmap=zipped or None
        )
    except _MissingGlobal as exc:
        raise MissingGlobal(name, exc.name, exc.reason) from None
    except pickle.UnpicklingError as exc:
        if isinstance(exc, _Refused) or re.search(
            r"Unsupported (global|class)|not an allowed global|Trying to call reduce", str(exc)
        ):
            raise UnsafeCheckpoint(name, _unsafe_globals(source, exc, zipped), _short_reason(exc)) from None
        raise CorruptCheckpoint(
            f"{name} is not a readable torch checkpoint: {_short_reason(exc) or _first_line(exc)}"
        ) from exc
    except (FileNotFoundError, PermissionError, IsADirectoryError, KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # IndexError, struct.error, LookupError, MemoryError, RecursionError, ...
        raise CorruptCheckpoint(
            f"{name} is not a readable torch checkpoint (truncated or corrupt?): {type(exc).__name__}: "
            f"{_first_line(exc)}"
        ) from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


def _short_reason(exc: BaseException) -> str:
    match = re.search(r"WeightsUnpickler error:\s*([^\n]+)", str(exc))
    return match.group(1).strip() if match else ""


def _unsafe_globals(file: Any, exc: BaseException, zipped: bool) -> list[str]:
    """Every offending global for zip files (torch can list them); the first one otherwise."""
    allowed = set(_safe_table())
    if zipped:
        with contextlib.suppress(Exception):
            found = sorted(set(torch.serialization.get_unsafe_globals_in_checkpoint(file)) - allowed)
            if found:
                return found
    if isinstance(exc, _Refused):
        return [exc.name]
    found = re.findall(r"GLOBAL ([\w.]+)", str(exc))
    return sorted(set(found) - allowed) or ["(see the torch error)"]


def _pickled_name(module: str, name: str) -> tuple[str, str]:
    """Python 2 spellings (``__builtin__.set``, protocol < 3) mapped to today's, as pickle's ``fix_imports`` does."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


class _Refused(pickle.UnpicklingError):
    def __init__(self, name: str):
        self.name = name
        super().__init__(f"Unsupported global: GLOBAL {name} is not in the safe loader's allowlist")


class _SafeUnpickler(pickle.Unpickler):
    """Resolves only the names in its table; REDUCE/NEWOBJ/BUILD can then only reach those objects."""

    table: MappingProxyType = MappingProxyType({})

    def find_class(self, module: str, name: str) -> Any:
        module, name = _pickled_name(module, name)
        try:
            return self.table[f"{module}.{name}"]
        except KeyError:
            raise _Refused(f"{module}.{name}") from None


class _SafePickleModule:
    """A ``pickle_module`` for ``torch.load``: every unpickling (also a legacy file's header) is restricted."""

    __name__ = "pickle"

    def __init__(self, table: MappingProxyType):
        self.Unpickler = type("_SafeUnpickler", (_SafeUnpickler,), {"table": table})

    def load(self, file: Any, **kwargs: Any) -> Any:
        return self.Unpickler(file, **kwargs).load()


class _MissingGlobal(Exception):
    def __init__(self, name: str, reason: str):
        self.name, self.reason = name, reason
        super().__init__(name)


def _gpus_arg_default(x: Any) -> Any:
    """Lightning < 1.2.8 pickled this argparse helper; Lightning's own shim is the identity too."""
    return x


class _FaultTolerantMode(str, enum.Enum):
    """The enum removed in Lightning 2.0 that 1.5 files pickled (the values of Lightning's shim)."""

    DISABLED = "disabled"
    AUTOMATIC = "automatic"
    MANUAL = "manual"


# Lightning's ``pl_legacy_patch`` shims, by pickled name under both namespaces: resolved here, per
# load, instead of patching modules and ``pickle.Unpickler`` under Lightning's process lock.
_LEGACY_SHIMS = {
    f"{ns}.{name}": obj
    for ns in _NAMESPACES
    for name, obj in (
        ("utilities.argparse_utils._gpus_arg_default", _gpus_arg_default),
        ("utilities.argparse._gpus_arg_default", _gpus_arg_default),
        ("utilities.enums._FaultTolerantMode", _FaultTolerantMode),
    )
}


class _RedirectingUnpickler(pickle.Unpickler):
    """Trusted loads: Lightning's legacy shims, and ``pytorch_lightning.*`` ↔ ``lightning.pytorch.*``.

    A global that cannot be imported under either namespace (a module removed, a class renamed)
    raises ``MissingGlobal`` naming it, instead of a traceback or "corrupt".
    """

    def find_class(self, module: str, name: str) -> Any:
        module, name = _pickled_name(module, name)
        shim = _LEGACY_SHIMS.get(f"{module}.{name}")
        if shim is not None:
            return shim
        try:
            return super().find_class(module, name)
        except (ImportError, AttributeError) as first:
            for old, new in (_NAMESPACES, _NAMESPACES[::-1]):
                if module == old or module.startswith(old + "."):
                    with contextlib.suppress(ImportError, AttributeError):
                        return super().find_class(new + module[len(old) :], name)
            raise _MissingGlobal(f"{module}.{name}", f"{type(first).__name__}: {first}") from None


class _RedirectingPickleModule:
    """A ``pickle_module`` for ``torch.load`` whose Unpickler redirects Lightning's namespaces."""

    Unpickler = _RedirectingUnpickler
    __name__ = "pickle"

    def load(self, file: Any, **kwargs: Any) -> Any:
        return self.Unpickler(file, **kwargs).load()
