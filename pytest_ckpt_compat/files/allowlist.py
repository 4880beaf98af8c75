"""The names a safe load may resolve: torch's ``weights_only`` table plus a small, curated one of ours.

Old Lightning files pickle a few of Lightning's own globals: callback *classes* as dict keys
(0.10 – 1.4) and ``AttributeDict`` hyperparameters (0.8 – 1.0.7). The allowlist maps exactly those
names, under both namespaces (``pytorch_lightning.*`` and ``lightning.pytorch.*``), to inert
stand-ins: a marker class that only carries the pickled name, and the builtin ``dict``. Nothing is
imported from the names in the file, so loading needs neither namespace installed and runs no
code. numpy arrays, dtypes and scalars (1.4/1.5 fault-tolerant RNG states, schedulers that keep
arrays) are data: numpy's reconstruct/dtype globals are allowed, as torch's serialization notes
recommend for ``weights_only``. ``pathlib`` paths (a ``Path`` given to ``save_hyperparameters()``)
are strings with a class: they load as the real class where this system can make it, else as the
pure path of the system that saved them (see ``path_globals``). The stand-ins are cached and
shared by every load, so they are immutable: a file cannot rename one for the files loaded after it.
"""

from __future__ import annotations

import contextlib
import functools
import os
import pathlib
import pickle
from types import MappingProxyType
from typing import Any

from ..core.versions import LIGHTNING_MODULES

NAMESPACES = LIGHTNING_MODULES

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
    """Metaclass of the stand-ins for pickled callback classes: they carry the pickled name only.

    Immutable once made: the stand-ins are shared by every load of the process.
    """

    def __repr__(cls) -> str:
        return f"<pickled class {cls.__module__}.{cls.__qualname__}>"

    def __setattr__(cls, name: str, value: Any) -> None:
        raise AttributeError(f"{cls!r} is read-only")

    def __delattr__(cls, name: str) -> None:
        raise AttributeError(f"{cls!r} is read-only")


@functools.cache
def legacy_class_ref(module: str, qualname: str) -> type:
    """The (cached, read-only) stand-in class for ``module.qualname``."""
    return LegacyClassRef(qualname.rsplit(".", 1)[-1], (), {"__module__": module, "__qualname__": qualname})


@functools.cache
def allowlist() -> tuple:
    """``(object, "pickled.name")`` pairs of ours: Lightning stand-ins, numpy data, paths, 1.5 metric reductions."""
    pairs: list[tuple[Any, str]] = []
    for namespace in NAMESPACES:
        for suffix in _CALLBACK_CLASSES:
            module, _, name = f"{namespace}.{suffix}".rpartition(".")
            pairs.append((legacy_class_ref(module, name), f"{module}.{name}"))
        for suffix in _DICT_CLASSES:
            pairs.append((dict, f"{namespace}.{suffix}"))
    pairs.extend((dict, name) for name in _FABRIC_DICT_CLASSES)
    pairs.extend(numpy_globals())
    pairs.extend(path_globals())
    # 1.4/1.5 fault-tolerant loop results pickle their metrics' reductions as
    # ``getattr(torch._C._VariableFunctionsClass, "sum")``: a marker owner and a getattr that only
    # answers that owner with inert function names (the loop results are dropped by the 2.0 unit).
    pairs.append((TORCH_FUNCTIONS, "torch._C._VariableFunctionsClass"))
    pairs.append((torch_function_ref, "builtins.getattr"))
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


# Python 3.13 moved the classes into the package's ``pathlib._local`` and pickles them under that name.
_PATH_MODULES = ("pathlib", "pathlib._local")


def path_globals() -> tuple:
    """``(factory, name)`` pairs that rebuild pickled ``pathlib`` paths from their string parts.

    A path pickles as its class and its parts (``PosixPath("/data", "run")``). ``PosixPath`` /
    ``WindowsPath`` load as themselves on the system that can make them (the object a trusted load
    gives) and as ``PurePosixPath`` / ``PureWindowsPath`` on the other one, where the concrete class
    cannot even be created: a file saved on Linux loads on Windows and the reverse. Making a path
    only parses strings (no filesystem access); the factories accept strings only, and what they
    return is not an instance the file made, so pickle's state-setting cannot touch it.
    """
    native_posix = os.name != "nt"
    classes = {
        "PurePosixPath": pathlib.PurePosixPath,
        "PureWindowsPath": pathlib.PureWindowsPath,
        "PosixPath": pathlib.PosixPath if native_posix else pathlib.PurePosixPath,
        "WindowsPath": pathlib.PureWindowsPath if native_posix else pathlib.WindowsPath,
    }
    return tuple((_path_factory(cls), f"{module}.{name}") for module in _PATH_MODULES for name, cls in classes.items())


@functools.cache
def _path_factory(cls: type) -> Any:
    def make_path(*parts: Any) -> Any:
        if not all(isinstance(part, str) for part in parts):
            kinds = ", ".join(sorted({type(part).__name__ for part in parts}))
            raise pickle.UnpicklingError(f"a pickled {cls.__name__} must be made of strings, not {kinds}")
        return cls(*parts)

    make_path.__qualname__ = make_path.__name__ = f"make_{cls.__name__}"
    return make_path


class _TorchFunctions:
    """Stand-in for ``torch._C._VariableFunctionsClass`` (the owner of ``torch.sum`` & co.); read-only."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<pickled torch._C._VariableFunctionsClass>"


TORCH_FUNCTIONS = _TorchFunctions()
_REDUCTIONS = frozenset({"sum", "mean", "max", "min", "prod", "std", "var", "median", "amax", "amin"})


def torch_function_ref(owner: Any, name: Any) -> type:
    """``getattr`` for safe loads: only ``torch.<reduction>`` on the stand-in owner, as an inert marker."""
    if owner is TORCH_FUNCTIONS and isinstance(name, str) and name in _REDUCTIONS:
        return legacy_class_ref("torch", name)
    raise pickle.UnpicklingError(
        f"Unsupported global: GLOBAL builtins.getattr on {owner!r}, {name!r} (only torch reductions are allowed)"
    )


def safe_table() -> MappingProxyType:
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
    return MappingProxyType({**{name: obj for obj, name in allowlist()}, "builtins.bytearray": bytearray})
