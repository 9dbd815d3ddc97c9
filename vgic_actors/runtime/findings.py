"""What a run returns: its outcome, its choice log and, instead of a hang, findings.

A deadlock (nothing enabled while work is pending) or a livelock (the step budget
spent while work is pending) is a `Finding` value carrying every actor's state and
the last events, never an exception and never a hang.
"""

from __future__ import annotations

import enum

import msgspec

from vgic_actors.events import AnyEvent
from vgic_actors.runtime.choices import ChoiceLog, ReplayReport
from vgic_actors.runtime.context import ContextViolation, Timing


class Outcome(enum.Enum):
    """How a run ended."""

    QUIESCENT = "quiescent"
    DEADLOCK = "deadlock"
    LIVELOCK = "livelock"
    BUDGET = "budget"


class ActorSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """One actor at the end of a run: state, what it waits for, its last points."""

    id: int
    name: str
    state: str
    blocked_on: str = ""
    idle: bool = False
    steps: int = 0
    holds: list[str] = msgspec.field(default_factory=list)
    last_points: list[str] = msgspec.field(default_factory=list)


class Finding(msgspec.Struct, frozen=True, kw_only=True):
    """A deadlock or livelock the runtime detected itself."""

    kind: str
    message: str
    step: int
    vt: int
    actors: list[ActorSnapshot]
    in_flight: list[str]
    last_events: list[AnyEvent] = msgspec.field(default_factory=list)


class RunStatistics(msgspec.Struct, frozen=True, kw_only=True):
    """Coverage figures of one run (for soak summaries)."""

    steps: int
    decisions: int
    deviations: int
    messages_sent: int
    messages_delivered: int
    timers_fired: int
    in_flight_at_end: int


class RunResult(msgspec.Struct, frozen=True, kw_only=True):
    """Everything that determines and describes one run; encodes to a replayable file."""

    seed: int
    strategy: str
    scenario: str
    variant: str
    code_version: str
    outcome: Outcome
    steps: int
    vt: int
    choices: ChoiceLog
    stats: RunStatistics
    finding: Finding | None = None
    replay: ReplayReport | None = None
    timing: Timing = msgspec.field(default_factory=Timing)
    context_violations: list[ContextViolation] = msgspec.field(default_factory=list)

    @property
    def ok(self) -> bool:
        """The run ended quiescent (no runtime finding)."""
        return self.outcome is Outcome.QUIESCENT
