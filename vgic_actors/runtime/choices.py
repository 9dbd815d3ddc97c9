"""The choice log: every scheduling decision of a run, the one data model for replay.

A decision is taken only where more than one event is enabled; its value is an index
into the enabled set in canonical order (0 is the simplest: keep running the current
actor, then the lowest actor id, then the oldest message in flight, then the earliest
due timer). `bounds[i]` is the size of the enabled set at decision i, so a log can be
checked, shrunk toward zeros, and replayed.
"""

from __future__ import annotations

import msgspec


class ChoiceLog(msgspec.Struct, frozen=True, kw_only=True):
    """The decisions of one run: values[i] < bounds[i]."""

    values: list[int]
    bounds: list[int]

    def __len__(self) -> int:
        return len(self.values)

    def deviations(self) -> int:
        """How many decisions left the canonical order (non-zero values)."""
        return sum(1 for v in self.values if v)


class ReplayReport(msgspec.Struct, frozen=True, kw_only=True):
    """How a replay fitted its run: the first misalignment and any overrun.

    diverged_at: index of the first decision whose enabled set had another size than
    the recording's (-1: none, or the log carried no bounds);
    misaligned_at: index of the first recorded value out of range (-1: none);
    misaligned: how many values were out of range (0 was used instead);
    overrun: how many decisions the run took beyond the end of the log (0 used);
    unused: how many recorded values the run never consumed.
    """

    diverged_at: int = -1
    misaligned_at: int = -1
    misaligned_bound: int = 0
    misaligned_value: int = 0
    misaligned: int = 0
    overrun: int = 0
    unused: int = 0

    @property
    def exact(self) -> bool:
        """The run consumed the log exactly, every value in range."""
        return (self.diverged_at < 0 and self.misaligned == 0 and self.overrun == 0
                and self.unused == 0)

    def describe(self) -> str:
        """One line for humans, in the style of Hypothesis' misalignment note."""
        if self.exact:
            return "replay exact"
        parts = []
        if self.diverged_at >= 0:
            parts.append(f"replay diverged at choice {self.diverged_at}: the enabled set "
                         "differs from the recording")
        if self.misaligned:
            parts.append(
                f"replay diverged at choice {self.misaligned_at}: bound "
                f"{self.misaligned_bound}, log has {self.misaligned_value}"
                f" ({self.misaligned} out of range)"
            )
        if self.overrun:
            parts.append(f"log ran out: {self.overrun} choices beyond its end took 0")
        if self.unused:
            parts.append(f"{self.unused} recorded choices unused")
        return "; ".join(parts)
