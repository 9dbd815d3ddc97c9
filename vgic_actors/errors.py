"""Typed errors. Each carries its exit status and builds its own one-line message.

Only `vgic_actors.cli` catches these and decides what the user sees. A broken
invariant is a *finding*, not an error, and is never raised as one of these.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_BAD_INPUT = 2


class VgicActorsError(Exception):
    """Base of every error the tool reports to the user without a traceback."""

    exit_code: int = EXIT_BAD_INPUT

    def format_message(self) -> str:
        """The one line printed after ``error: ``."""
        return str(self)


class UsageError(VgicActorsError):
    """The command line asks for something the tool cannot do."""


class InputError(VgicActorsError):
    """A file the user gave is malformed: names the file, the path inside it, expected and got."""

    def __init__(self, file: str, path: str, expected: str, got: str) -> None:
        self.file, self.path, self.expected, self.got = file, path, expected, got
        super().__init__(f"{file}: {path}: expected {expected}, got {got}")


class ArchUsageError(VgicActorsError):
    """A caller used the architectural model outside what the architecture defines.

    Example: writing ICV_AP1R3_EL1 on an interface with one APR per group, or a
    List Register index beyond ICH_VTR_EL2.ListRegs. Guest behaviour the
    architecture calls UNPREDICTABLE is *not* an error: the model follows a
    documented reading instead.
    """


class ModelInternalError(Exception):
    """A bug in the model itself: shown with its traceback, please report it."""
