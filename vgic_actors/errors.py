"""Typed errors. Each carries its exit status and builds its own one-line message.

Only `vgic_actors.cli` catches these and decides what the user sees. A broken
invariant is a *finding*, not an error, and is never raised as one of these.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


class VgicActorsError(Exception):
    """Base of every error the tool reports to the user without a traceback."""

    exit_code: int = EXIT_BAD_INPUT

    def format_message(self) -> str:
        """The one line printed after ``error: ``."""
        return str(self)


class UsageError(VgicActorsError):
    """The command line asks for something the tool cannot do."""


class Interrupted(VgicActorsError):
    """Ctrl-C: the message says what was kept and the command that continues."""

    exit_code = EXIT_INTERRUPTED


class InputError(VgicActorsError):
    """A file the user gave is malformed: names the file, the path inside it, expected and got."""

    def __init__(self, file: str, path: str, expected: str, got: str, *,
                 line: int | None = None, column: int | None = None) -> None:
        self.file, self.path, self.expected, self.got = file, path, expected, got
        self.line, self.column = line, column
        where = file if line is None else f"{file}:{line}:{column or 1}"
        super().__init__(f"{where}: {path}: expected {expected}, got {got}")


class OutputError(VgicActorsError):
    """A file the tool writes cannot be written (disk full, read-only, not a folder, ...)."""

    def __init__(self, file: str, reason: str, kept: str = "") -> None:
        self.file, self.reason = file, reason
        super().__init__(f"{file}: cannot write: {reason}" + (f" ({kept})" if kept else ""))


class BusyError(VgicActorsError):
    """Another process holds the lock on an output folder."""


class ArchUsageError(VgicActorsError):
    """A caller used the architectural model outside what the architecture defines.

    Example: writing ICV_AP1R3_EL1 on an interface with one APR per group, or a
    List Register index beyond ICH_VTR_EL2.ListRegs. Guest behaviour the
    architecture calls UNPREDICTABLE is *not* an error: the model follows a
    documented reading instead.
    """


class ModelInternalError(Exception):
    """A bug in the model itself: shown with its traceback, please report it."""


class ReplayDivergence(VgicActorsError):
    """A replayed choice log does not fit the run it is replayed on (strict replay only).

    Plain replay records a misalignment and carries on; a caller that needs the exact
    run (``run --replay``) turns the report into this error.
    """

    exit_code = EXIT_FINDINGS

    def __init__(self, index: int, bound: int, value: int) -> None:
        self.index, self.bound, self.value = index, bound, value
        super().__init__(f"replay diverged at choice {index}: bound {bound}, log has {value}")


class RuntimeModelError(ModelInternalError):
    """The model broke a rule of the actor runtime (a bug in the model, not a finding)."""


class LockOrderError(RuntimeModelError):
    """A model lock was taken against the lock order, recursively, or released unheld."""


class OutsideActorError(RuntimeModelError):
    """A runtime primitive that needs the current actor was used outside any actor."""
