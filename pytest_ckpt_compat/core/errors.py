"""One exception hierarchy, so callers (and the CLI's exit codes) can tell failures apart.

Every message says what was found and what to do next. Every error class of the package is here
(the README's exit-code table lists each), and they are built one way: a class whose callers need
facts (``UnsafeCheckpoint.globals``, ``CheckpointTooNew.saved``, ...) takes those facts and an
optional ``detail`` (the underlying reason, appended in parentheses) and writes its message itself;
a class without facts of its own takes the finished message. The loader's private ``_Refused`` and
``_MissingGlobal`` are signals inside its unpickler, translated into the classes here before they
leave it.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "CatalogueError",
    "CheckFailed",
    "CheckpointCompatError",
    "CheckpointIOError",
    "CheckpointNotFound",
    "CheckpointTooNew",
    "CheckpointWriteError",
    "CorruptCheckpoint",
    "GoldenBuildError",
    "GoldenError",
    "HardLinked",
    "HashMismatch",
    "IncompatibleClass",
    "InvalidLedger",
    "InvalidVersion",
    "MigrationError",
    "MissingGlobal",
    "NoTorchMagic",
    "NotALightningCheckpoint",
    "NotARegularFile",
    "NotPlainData",
    "ObjectPickleUnsupported",
    "PreflightFailed",
    "RecipeError",
    "SourceChanged",
    "UnexpectedError",
    "UnsafeCheckpoint",
    "classify",
]


def _with_detail(message: str, detail: str) -> str:
    return f"{message} ({detail})" if detail else message


class CheckpointCompatError(Exception):
    """Base class of every error this package raises on purpose; ``exit_code`` is the CLI's."""

    exit_code: ClassVar[int] = 1


class NotALightningCheckpoint(CheckpointCompatError):
    """The payload has no ``pytorch-lightning_version`` key (a bare state_dict, a non-dict, ...)."""

    exit_code = 3

    def __init__(self, found_keys: list[str] | None = None, *, found: str = "", detail: str = ""):
        """``found_keys``: the top-level keys of a dict without a version; ``found``: what the file
        or payload is instead (``"the payload is a list, not a dict"``)."""
        self.found_keys, self.found = list(found_keys or []), found
        if found:
            message = f"not a Lightning checkpoint: {found}"
        else:
            shown = ", ".join(repr(k) for k in self.found_keys[:20]) or "none"
            message = (
                f"not a Lightning checkpoint: no 'pytorch-lightning_version' key (top-level keys found: {shown}). "
                "If this is a Lightning checkpoint saved before 0.8.2, pass --assume-version / assume_version=..."
            )
        super().__init__(_with_detail(message, detail))


class ObjectPickleUnsupported(NotALightningCheckpoint):
    """A whole pickled object (``torch.save(model)``) whose class names this tool cannot rewrite for a
    redirect (a protocol 4+ pickle, torch's legacy format), or that no declared redirect names."""

    def __init__(self, message: str):
        CheckpointCompatError.__init__(self, message)
        self.found_keys, self.found = [], message


class CheckpointNotFound(CheckpointCompatError, FileNotFoundError):
    """The path does not exist (also a ``FileNotFoundError``, for callers that expect one)."""

    exit_code = 2


class InvalidVersion(CheckpointCompatError):
    """A version string (saved in the file, or asked for as a target) does not parse."""

    exit_code = 3


class CheckpointTooNew(CheckpointCompatError):
    """The checkpoint was saved by a newer Lightning than the target; we only upgrade forwards."""

    exit_code = 4

    def __init__(self, saved: str, target: str, detail: str = ""):
        self.saved, self.target = saved, target
        message = (
            f"checkpoint was saved by Lightning {saved}, newer than the target {target}; "
            "upgrade Lightning (or pass a newer --target) instead of downgrading the file"
        )
        super().__init__(_with_detail(message, detail))


class CorruptCheckpoint(CheckpointCompatError):
    """The file is empty, truncated, not a torch file, or otherwise unreadable."""

    exit_code = 5


class NoTorchMagic(CorruptCheckpoint):
    """Neither a zip archive nor a pickle that starts with torch's magic number: maybe another format."""


class UnsafeCheckpoint(CheckpointCompatError):
    """Loading needs globals outside the allowlist: only a trusted load (``trust=True``) may run them."""

    exit_code = 6

    def __init__(self, path: str, globals_: list[str], detail: str = ""):
        self.path, self.globals = path, list(globals_)
        names = ", ".join(self.globals) or "unknown"
        message = (
            f"{path}: refusing to unpickle globals outside the allowlist: {names}. "
            "If you trust the file's origin, load it with trust=True (CLI: --trust)."
        )
        super().__init__(_with_detail(message, detail))


class MissingGlobal(CheckpointCompatError):
    """A trusted load needs a class or function that cannot be imported (module missing, class renamed)."""

    exit_code = 10

    def __init__(self, path: str, name: str, detail: str = ""):
        self.path, self.name = path, name
        message = _with_detail(f"{path}: the file pickles {name}, which cannot be imported here", detail)
        super().__init__(
            f"{message}. Install the package that defines it (or restore the renamed class under its old name) "
            "and load again with trust"
        )


class IncompatibleClass(CheckpointCompatError):
    """A trusted file's class imports but cannot be rebuilt from the state the file saved: its library
    changed how the class pickles (a pandas 1.x DataFrame under pandas 3), so no redirect or unit helps."""

    exit_code = 11

    def __init__(self, path: str, name: str, library: str = "", detail: str = ""):
        self.path, self.name, self.library = path, name, library
        where = f"the installed {library}" if library else "the installed code"
        message = _with_detail(
            f"{path}: the file pickles {name}, which {where} cannot rebuild from the saved state", detail
        )
        super().__init__(
            f"{message}: the class's pickle layout changed since the file was written. Load the file where the "
            "release that wrote it is installed and keep that value as plain data (or declare a redirect to a "
            "class that reads the old state)"
        )


class PreflightFailed(CheckpointCompatError):
    """``ckpt-compat check`` / ``preflight``: a load or resume of the file into the given module would
    fail or lose state (the report lists each finding)."""

    exit_code = 12


class MigrationError(CheckpointCompatError):
    """A migration raised: the id says which one, the cause is chained."""

    exit_code = 7

    def __init__(self, migration_id: str, cause: BaseException, detail: str = ""):
        self.migration_id, self.cause = migration_id, cause
        super().__init__(_with_detail(f"migration {migration_id} failed: {type(cause).__name__}: {cause}", detail))


class CatalogueError(CheckpointCompatError):
    """A migration unit is malformed (missing ID/VERSION/upgrade, duplicate ID, ...)."""

    exit_code = 8


class GoldenError(CheckpointCompatError):
    """Fetching or verifying a golden checkpoint failed."""

    exit_code = 9


class HashMismatch(GoldenError):
    """A downloaded golden does not have the sha256 the registry promises."""


class GoldenBuildError(GoldenError):
    """Building a golden (``ckpt-compat golden add``) failed; ``golden/`` was left untouched."""


class RecipeError(GoldenError):
    """A golden recipe does not import, lacks part of the recipe contract, or does not build."""


class NotARegularFile(CheckpointCompatError, OSError):
    """A path names a FIFO, a device, a socket or a folder where a checkpoint file is expected.

    Only regular files are read or replaced: opening a FIFO would block forever, and replacing
    ``/dev/null`` (or any device) with a regular file would break the system for everyone.
    """

    exit_code = 2


class HardLinked(CheckpointCompatError):
    """An in-place upgrade of a file with other hard links would split them: refused without
    ``--break-hardlinks`` (the other names would keep the old checkpoint)."""

    exit_code = 2


class InvalidLedger(CheckpointCompatError):
    """The ``ckpt_compat`` ledger in the checkpoint is not the dict this tool writes."""

    exit_code = 3


class CheckpointIOError(CheckpointCompatError):
    """Reading or writing a file failed at the OS level (permissions, disk full, name too long)."""

    exit_code = 1


class CheckpointWriteError(CheckpointIOError):
    """Writing the upgraded checkpoint failed (disk full, an unpicklable or too deeply nested value...).

    The destination is untouched and no temp file is left; the cause is chained.
    """


class NotPlainData(CheckpointWriteError):
    """The upgraded checkpoint still holds a stand-in for a pickled class: pickling it would import
    the module it names. Upgraded files hold plain data only."""


class SourceChanged(CheckpointWriteError):
    """The source file changed (size, time or inode) between loading and writing: another process
    (a training job rewriting ``last.ckpt``) is using it. Nothing was written."""


class UnexpectedError(CheckpointCompatError):
    """A failure this tool did not foresee for one file; the type and message are kept (please report)."""

    exit_code = 1


class CheckFailed(AssertionError):
    """A matrix or ``testing`` check found a difference; the message lists every difference found.

    An ``AssertionError``, not a ``CheckpointCompatError``: it is a test's failure, which pytest
    reports as such (pytest's exit code 1), not a failure of the tool on a user's file.
    """


def classify(exc: Exception) -> CheckpointCompatError:
    """The named error for any per-file failure: ours as they are, the rest wrapped (cause chained)."""
    if isinstance(exc, CheckpointCompatError):
        return exc
    if isinstance(exc, OSError):
        wrapped: CheckpointCompatError = CheckpointIOError(f"{type(exc).__name__}: {exc}")
    else:
        wrapped = UnexpectedError(f"unexpected {type(exc).__name__}: {exc} (please report this)")
    wrapped.__cause__ = exc
    return wrapped
