"""``logs check``: re-judge a run's invariants offline, from its events alone.

The run's own judgement (vgic_actors.checks.final) reads the model's final
state; this one rebuilds what it needs from the event stream, one event at a
time, in memory proportional to the number of interrupts (never to the log):

- **deactivation-lost**: an interrupt's Active state, as the log tells it (the
  guest's IAR makes it Active; a fold, ``ActiveChanged``, an untrapped
  deactivation on the vCPU whose LR holds it make it inactive), against the
  guest's acknowledges and deactivations (``GuestAcked``, ``GuestEoied``,
  ``GuestDeactivated``): still Active at the end, deactivated since its last
  acknowledge and held by no vCPU. The step it points at is the lost deactivation.
- **ap-list-consistency**: ``IrqQueued`` onto a second ap_list while the first
  still holds it, or ``IrqPruned`` off a list the log never put it on.
- **active-spis-undercount**: where the log shows the ``active_spis`` accounting
  at work (an increment), an SPI Active on an ap_list at the end while the last
  ``dist.active_spis`` access left 0. The step is where the counter reached 0.
  (``IrqPruned`` off every list also says the interrupt is no longer Active: the
  oracle sends nowhere only an interrupt that is neither Active nor pending.)
- **deadlock** / **livelock**: ``RunEnded`` outcome and ``FindingReported``; a
  quiescent run with a pCPU that never finished.

The names are the catalogue's (vgic_actors.checks.catalogue). What the log cannot
show (a guest program's own assertion, an expectation on the final state, HW
physical deactivations) is not judged here.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field

import msgspec

from vgic_actors.checks.catalogue import INVARIANTS
from vgic_actors.events import (
    ActiveChanged,
    ActorBlocked,
    ActorFinished,
    ActorStepped,
    AnyEvent,
    CellAccessed,
    FindingReported,
    GuestAcked,
    GuestDeactivated,
    GuestEoied,
    HcrConfigured,
    IrqPruned,
    IrqQueued,
    LrFolded,
    RunEnded,
)
from vgic_actors.logs.describe import row
from vgic_actors.logs.reader import LogReader

IrqKey = tuple[int | None, int]
"""(vCPU for SGIs/PPIs, else None; INTID): one interrupt of the VM."""

ACTIVE_SPIS = "dist.active_spis"
SPI_MIN, SPI_END = 32, 1020

CHECKED = ("deadlock", "livelock", "deactivation-lost", "ap-list-consistency",
           "active-spis-undercount")
"""The catalogued invariants this module can judge from a log."""


def irq_key(vcpu: int, intid: int) -> IrqKey:
    """Private interrupts are banked per vCPU; SPIs and LPIs are global."""
    return (vcpu if intid < SPI_MIN else None, intid)


def irq_label(key: IrqKey) -> str:
    """'SPI 32', 'vcpu1 PPI 27', 'LPI 8192' (checks.final.irq_name's words)."""
    vcpu, intid = key
    if intid >= 8192:
        return f"LPI {intid}"
    if intid >= SPI_MIN:
        return f"SPI {intid}"
    return f"vcpu{vcpu} {'SGI' if intid < 16 else 'PPI'} {intid}"


class OfflineViolation(msgspec.Struct, frozen=True, kw_only=True):
    """One invariant the log shows broken, and the line and step it points at."""

    invariant: str
    kind: str
    message: str
    line: int
    step: int


def _violation(name: str, message: str, line: int, step: int) -> OfflineViolation:
    return OfflineViolation(invariant=name, kind=INVARIANTS[name].kind, message=message,
                            line=line, step=step)


@dataclass
class _Irq:
    """What the log has told about one interrupt so far."""

    active: bool = False
    active_since: tuple[int, int] = (0, 0)  # (line, step) it last became Active
    acks: int = 0
    held: int = 0
    deactivations: int = 0
    last_deactivation: tuple[int, int, str] = (0, 0, "")
    on_list: int | None = None
    awaiting_hw: int | None = None  # vCPU whose untrapped deactivation the next fold confirms


@dataclass
class OfflineChecker:
    """Feed it events in log order (`feed`), then `finish`; read `violations`."""

    irqs: dict[IrqKey, _Irq] = field(default_factory=dict)
    lrs: dict[int, frozenset[int]] = field(default_factory=dict)
    active_spis: int = 0
    active_spis_zero_at: tuple[int, int] = (0, 0)
    accounting: bool = False
    stepped: set[str] = field(default_factory=set)
    finished: set[str] = field(default_factory=set)
    blocked_on: dict[str, str] = field(default_factory=dict)
    outcome: str = ""
    ended_at: tuple[int, int] = (0, 0)
    findings: list[tuple[int, int, str, str]] = field(default_factory=list)
    violations: list[OfflineViolation] = field(default_factory=list)
    events: Counter[str] = field(default_factory=Counter)
    last: tuple[int, int] = (0, 0)

    def _irq(self, key: IrqKey) -> _Irq:
        irq = self.irqs.get(key)
        if irq is None:
            irq = self.irqs[key] = _Irq()
        return irq

    def feed(self, number: int, event: AnyEvent) -> None:
        """Update the picture with one event (line ``number`` of the log)."""
        self.last = (number, event.step)
        match event:
            case GuestAcked(vcpu=v, intid=i):
                irq = self._irq(irq_key(v, i))
                irq.active, irq.active_since = True, (number, event.step)
                irq.acks += 1
                irq.held += 1
            case GuestEoied(deactivates=False):
                pass
            case GuestEoied(vcpu=v, intid=i, trapped=t) | GuestDeactivated(vcpu=v, intid=i,
                                                                           trapped=t):
                self._deactivated(number, event, irq_key(v, i), v, i, t)
            case LrFolded(vcpu=v, intid=i, state=st):
                irq = self._irq(irq_key(v, i))
                irq.active = "ACTIVE" in st
                irq.awaiting_hw = None
            case ActiveChanged(intid=i, active=a):
                for key in ([(None, i)] if i >= SPI_MIN else
                            [k for k in self.irqs if k[1] == i]):
                    irq = self._irq(key)
                    irq.active = a
                    if a:
                        irq.active_since = (number, event.step)
            case HcrConfigured(vcpu=v, lrs=lrs):
                self.lrs[v] = frozenset(lrs)
            case IrqQueued(vcpu=v, intid=i):
                irq = self._irq(irq_key(v, i))
                if irq.on_list is not None and irq.on_list != v:
                    self.violations.append(_violation(
                        "ap-list-consistency",
                        f"{irq_label(irq_key(v, i))} queued on vcpu{v}'s ap_list while still "
                        f"on vcpu{irq.on_list}'s (no prune in between)", number, event.step))
                irq.on_list = v
            case IrqPruned(vcpu=v, intid=i, to=to):
                irq = self._irq(irq_key(v, i))
                if irq.on_list != v:
                    where = "no ap_list" if irq.on_list is None else f"vcpu{irq.on_list}'s"
                    self.violations.append(_violation(
                        "ap-list-consistency",
                        f"{irq_label(irq_key(v, i))} pruned off vcpu{v}'s ap_list but the log "
                        f"has it on {where}", number, event.step))
                irq.on_list = to if to >= 0 else None
                if to < 0:
                    irq.active = False  # the oracle sends nowhere only what is not Active
            case CellAccessed(cell=c, old=a, new=b) if c == ACTIVE_SPIS:
                if b > a:
                    self.accounting = True
                if b == 0 and (self.active_spis != 0 or a != 0):
                    self.active_spis_zero_at = (number, event.step)
                self.active_spis = b
            case ActorStepped(actor=name):
                self.stepped.add(name)
            case ActorFinished(actor=name):
                self.finished.add(name)
            case ActorBlocked(actor=name, on=on):
                self.blocked_on[name] = on
            case FindingReported(kind=k, message=m):
                self.findings.append((number, event.step, k, m))
            case RunEnded(outcome=o):
                self.outcome = o
                self.ended_at = (number, event.step)

    def _deactivated(self, number: int, event: AnyEvent, key: IrqKey, vcpu: int, intid: int,
                     trapped: bool) -> None:
        irq = self._irq(key)
        irq.deactivations += 1
        irq.held = max(0, irq.held - 1)
        how = "EOIR" if isinstance(event, GuestEoied) else (
            "DIR" if getattr(event, "how", "") == "dir" else "ICACTIVER")
        irq.last_deactivation = (number, event.step,
                                 f"vcpu{vcpu} {how} at step {event.step}, "
                                 f"{'trapped' if trapped else 'not trapped'}")
        if not trapped and intid in self.lrs.get(vcpu, ()):
            irq.active = False  # the hardware deactivates its own List Register
            irq.awaiting_hw = vcpu

    def finish(self) -> list[OfflineViolation]:
        """The end-of-run judgements; returns every violation, earliest first."""
        line, step = self.ended_at if self.outcome else self.last
        if self.outcome == "deadlock" or (self.outcome == "quiescent" and self._stuck()):
            self.violations.append(_violation("deadlock", self._deadlock_message(), line, step))
        elif self.outcome in ("livelock", "budget"):
            message = next((m for _, _, _k, m in self.findings), f"run ended: {self.outcome}")
            self.violations.append(_violation("livelock", message, line, step))
        for key, irq in sorted(self.irqs.items(), key=lambda kv: (kv[0][1], kv[0][0] or -1)):
            if irq.active and irq.held == 0 and irq.deactivations:
                dline, dstep, how = irq.last_deactivation
                if dline < irq.active_since[0]:
                    continue  # re-activated (ISACTIVER) after the last deactivation
                where = (f"on vcpu{irq.on_list}'s ap_list" if irq.on_list is not None
                         else "off any ap_list")
                self.violations.append(_violation(
                    "deactivation-lost",
                    f"{irq_label(key)} is still Active ({where}) after its last deactivation "
                    f"({how}); no vCPU holds it", dline, dstep))
        if self.accounting and self.active_spis == 0:
            for key, irq in sorted(self.irqs.items(), key=lambda kv: kv[0][1]):
                if SPI_MIN <= key[1] < SPI_END and irq.active and irq.on_list is not None:
                    zline, zstep = self.active_spis_zero_at
                    self.violations.append(_violation(
                        "active-spis-undercount",
                        f"{irq_label(key)} is Active on vcpu{irq.on_list}'s ap_list while "
                        f"active_spis is 0 (since step {zstep})", zline, zstep))
                    break
        self.violations.sort(key=lambda v: (v.step, v.line))
        return self.violations

    def _stuck(self) -> list[str]:
        """CPUs and VMM programs that ran and never finished. Servers (the distributor,
        the host IRQ handler) end waiting on their own mailbox, ``recv:NAME``: idle by
        design; mailboxes (names with a dot) never step."""
        return sorted(a for a in self.stepped
                      if "." not in a and a not in self.finished
                      and self.blocked_on.get(a) != f"recv:{a}")

    def _deadlock_message(self) -> str:
        if self.outcome == "deadlock":
            return next((m for _, _, _k, m in self.findings), "no CPU could make progress")
        stuck = [f"{a} (blocked on {self.blocked_on.get(a, '?')})" for a in self._stuck()]
        return "the run went quiet with work left: " + ", ".join(stuck) + " never finished"


class CheckResult(msgspec.Struct, frozen=True, kw_only=True):
    """What ``logs check`` reports: every violation (earliest first) and the first's
    context lines."""

    file: str
    scenario: str
    variant: str
    seed: int
    outcome: str
    events: int
    checked: list[str]
    violations: list[OfflineViolation]
    context: list[str]

    @property
    def ok(self) -> bool:
        """No invariant broken."""
        return not self.violations


def check_log(reader: LogReader, *, context: int = 6) -> CheckResult:
    """Judge the log; on a violation, read the lines around the first one again."""
    checker = OfflineChecker()
    n = 0
    for number, _line, event in reader.events():
        n += 1
        checker.feed(number, event)
    found = checker.finish()
    lines: list[str] = []
    if found:
        lines = list(context_rows(reader, found[0].line, context))
    header = reader.header
    return CheckResult(
        file=reader.file, scenario=header.scenario if header else "",
        variant=header.variant if header else "", seed=header.seed if header else 0,
        outcome=checker.outcome or "(no RunEnded: the log is cut short)", events=n,
        checked=list(CHECKED), violations=found, context=lines)


def context_rows(reader: LogReader, line: int, around: int) -> Iterator[str]:
    """Table rows of the ``around`` events either side of log line ``line`` (marked ``>``);
    a second pass over the file, holding at most ``around`` rows."""
    before: deque[str] = deque(maxlen=around)
    after = 0
    for number, _raw, event in reader.events():
        text = row(number, event)
        if number < line:
            before.append("  " + text)
            continue
        if number == line:
            yield from before
            yield "> " + text
            continue
        yield "  " + text
        after += 1
        if after >= around:
            return


def render(result: CheckResult) -> str:
    """The human report: verdict line, the first violation with context, the others."""
    head = (f"{result.file}: {result.scenario or '?'} variant {result.variant or '?'} "
            f"seed {result.seed}, {result.events} events, outcome {result.outcome}")
    if result.ok:
        return f"{head}\nok: no violation of {', '.join(result.checked)}"
    first = result.violations[0]
    out = [head, f"first violation: {first.invariant} ({first.kind}) at step {first.step}, "
                 f"line {first.line}", f"  {first.message}", "", "context:", *result.context]
    if len(result.violations) > 1:
        out += ["", "also:"]
        out += [f"  {v.invariant} at step {v.step} (line {v.line}): {v.message}"
                for v in result.violations[1:]]
    return "\n".join(out)
