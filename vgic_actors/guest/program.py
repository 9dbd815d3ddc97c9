"""A scripted guest: a list of operations run in order by one vCPU.

Each operation is one guest instruction (one interleaving point). An operation
is a small frozen dataclass deriving from ``GuestOp``: ``execute`` runs it and
says whether the program moves on (None), spins on the same instruction
(``RETRY``) or exits to the host (a ``GuestExit``); ``complete`` receives the
host's result for an exiting instruction. Operations live in modules of their
own (this one holds the CPU-interface and memory basics), so adding one never
touches the interpreter. Failed expectations are recorded in ``failures``
(the run goes on).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from vgic_actors.arch.cpuif import VirtualCpuInterface
from vgic_actors.arch.registers import GicVersion
from vgic_actors.arch.traps import Trap
from vgic_actors.errors import OutsideActorError
from vgic_actors.events import AnyEvent, GuestAcked, GuestDeactivated, GuestEoied
from vgic_actors.guest.ledger import GuestLedger, irq_key
from vgic_actors.kvm.guest_api import GuestEnv, MmioAccess, MmioReg
from vgic_actors.runtime import ExitReason, GuestExit, current_actor, point, spin_yield

_V3_CTLR_EOIMODE = 1 << 1  # ICC_CTLR_EL1.EOImode
_V2_CTLR_EOIMODE = 1 << 9  # GICC_CTLR.EOImodeNS


def _log(event: type[GuestAcked | GuestEoied | GuestDeactivated], vcpu: int, value: int,
         **fields: Any) -> None:
    """Emit a guest event for the interrupt ``value`` names (when the run writes events)."""
    try:
        actor = current_actor()
    except OutsideActorError:  # an operation driven by hand, outside any run
        return
    sched = actor.sched
    if sched.em.kernel_on:  # kernel sinks (checks/ack_oracle.py) judge every acknowledge
        ev: AnyEvent = event(step=sched.step, vt=sched.vt, actor=actor.name, vcpu=vcpu,
                             intid=irq_key(vcpu, value)[1], **fields)
        sched.em.emit(ev)


def _is_special_value(value: int) -> bool:
    """An IAR/EOIR value naming INTID 1020..1023. Not a plain ``< 1020``: LPIs (>= 8192)
    are real interrupts, and a GICv2 SGI value carries its source CPU in bits [12:10]."""
    return 1020 <= (value if value >= 8192 else value & 0x3FF) <= 1023


class Retry:
    """The instruction did not finish (a spin loop): run it again at the next step."""

    def __repr__(self) -> str:
        return "RETRY"


RETRY: Final = Retry()
StepResult = GuestExit | Retry | None


class GuestOp:
    """One guest instruction. Subclasses are frozen dataclasses."""

    def execute(self, prog: GuestProgram, env: GuestEnv) -> StepResult:
        """Run the instruction: None (done), RETRY (same pc next step) or a GuestExit."""
        raise NotImplementedError

    def complete(self, prog: GuestProgram, value: int | None) -> bool:
        """The host finished the exiting instruction with ``value``; True moves pc on."""
        return True


def guest_group(cpuif: VirtualCpuInterface) -> int:
    """The interrupt group a KVM guest uses: 1 on GICv3, 0 on GICv2 (Group 0 only)."""
    return 0 if cpuif.config.version is GicVersion.V2 else 1


def trapped(out: object) -> GuestExit | None:
    """A trapping CPU-interface access becomes a TRAP exit (None when it executed)."""
    return GuestExit(ExitReason.TRAP, out) if isinstance(out, Trap) else None


def _write_ctlr_bit(cpuif: VirtualCpuInterface, bit: int, on: bool) -> Trap | None:
    """Read-modify-write one bit of ICC_CTLR_EL1 / GICC_CTLR."""
    ctlr = cpuif.read_ctlr(trap_check=False)
    assert isinstance(ctlr, int)
    return cpuif.write_ctlr(ctlr | bit if on else ctlr & ~bit)


@dataclass(frozen=True, slots=True)
class SetGroupEnable(GuestOp):
    """ICC_IGRPEN<group>_EL1 = enable (GICv2: GICC_CTLR.EnableGrp<group>).

    ``group`` None: the guest's interrupt group (1 on GICv3, 0 on GICv2 as KVM configures).
    """

    group: int | None = None
    enable: bool = True

    def execute(self, prog: GuestProgram, env: GuestEnv) -> StepResult:
        cpuif = env.cpuif
        g = guest_group(cpuif) if self.group is None else self.group
        if cpuif.config.version is GicVersion.V2:
            return trapped(_write_ctlr_bit(cpuif, 1 << g, self.enable))
        return trapped(cpuif.write_igrpen(g, int(self.enable)))


@dataclass(frozen=True, slots=True)
class SetEoiMode(GuestOp):
    """ICC_CTLR_EL1.EOImode = eoimode (1: priority drop and deactivation split)."""

    eoimode: bool

    def execute(self, prog: GuestProgram, env: GuestEnv) -> StepResult:
        v2 = env.cpuif.config.version is GicVersion.V2
        return trapped(_write_ctlr_bit(env.cpuif, _V2_CTLR_EOIMODE if v2 else _V3_CTLR_EOIMODE,
                                       self.eoimode))


@dataclass(frozen=True, slots=True)
class SetPmr(GuestOp):
    """ICC_PMR_EL1 = value."""

    value: int

    def execute(self, prog: GuestProgram, env: GuestEnv) -> StepResult:
        return trapped(env.cpuif.write_pmr(self.value))


@dataclass(frozen=True, slots=True)
class Ack(GuestOp):
    """Wait for an interrupt, then ICC_IAR<group>_EL1; check ``expect``.

    Group 1 (the default on GICv3) is signalled as vIRQ, Group 0 as vFIQ (gic-arch.md 3):
    WFI while that line is low. ``group`` None: the guest's group.
    """

    expect: int | None = None
    group: int | None = None

    def execute(self, prog: GuestProgram, env: GuestEnv) -> StepResult:
        cpuif = env.cpuif
        group = guest_group(cpuif) if self.group is None else self.group
        virq, vfiq = cpuif.virq_vfiq()
        if not (vfiq if group == 0 and cpuif.config.version is not GicVersion.V2 else virq):
            return GuestExit(ExitReason.WFI)
        out = cpuif.read_iar(group)
        if isinstance(out, Trap):
            return trapped(out)
        prog.acked_intid(env, out, self.expect)
        return None

    def complete(self, prog: GuestProgram, value: int | None) -> bool:
        if value is None:
            return False  # WFI woke: retry the acknowledge
        prog.acked_intid(prog.env, value, self.expect)
        return True


@dataclass(frozen=True, slots=True)
class Eoir(GuestOp):
    """ICC_EOIR<group>_EL1 for ``intid`` (None: the most recent acknowledge not yet EOIed).

    ``group`` None: the guest's group. EOImode 0 makes it a deactivation too.
    """

    intid: int | None = None
    group: int | None = None

    def execute(self, prog: GuestProgram, env: GuestEnv) -> StepResult:
        intid = self.intid if self.intid is not None else prog.last_unfinished()
        group = guest_group(env.cpuif) if self.group is None else self.group
        deactivates = not env.cpuif.state.vmcr.veoim
        out = env.cpuif.write_eoir(group, intid)
        if isinstance(out, Trap):
            return trapped(out)
        prog.eoied(env, intid, deactivates)
        return None

    def complete(self, prog: GuestProgram, value: int | None) -> bool:
        intid = self.intid if self.intid is not None else prog.last_unfinished()
        prog.eoied(prog.env, intid, not prog.env.cpuif.state.vmcr.veoim, trapped=True)
        return True


@dataclass(frozen=True, slots=True)
class Dir(GuestOp):
    """ICC_DIR_EL1 for ``intid`` (None: the most recent acknowledge; ``from_var``: the INTID
    another vCPU left in guest memory, for a deferred deactivation)."""

    intid: int | None = None
    from_var: str | None = None

    def target(self, prog: GuestProgram, env: GuestEnv) -> int:
        """The INTID this DIR names."""
        if self.from_var is not None:
            return env.memory.get(self.from_var, 1023)
        if self.intid is not None:
            return self.intid
        return prog.acked[-1] if prog.acked else 1023

    def execute(self, prog: GuestProgram, env: GuestEnv) -> StepResult:
        intid = self.target(prog, env)
        veoim = env.cpuif.state.vmcr.veoim
        out = env.cpuif.write_dir(intid)
        if veoim and not _is_special_value(intid):
            how = "trapped" if isinstance(out, Trap) else "not trapped"
            prog.ledger.deactivated(env.vcpu_id, intid, f"DIR at pc{prog.pc}, {how}",
                                    "DIR-trapped" if isinstance(out, Trap) else "DIR-untrapped")
            _log(GuestDeactivated, env.vcpu_id, intid, how="dir", trapped=isinstance(out, Trap))
        return trapped(out)


@dataclass(frozen=True, slots=True)
class Store(GuestOp):
    """Guest memory write (for hand-offs between vCPUs); ``last_ack``: store the INTID of the
    most recent acknowledge instead of ``value``."""

    var: str
    value: int = 0
    last_ack: bool = False

    def execute(self, prog: GuestProgram, env: GuestEnv) -> StepResult:
        value = (prog.acked[-1] if prog.acked else 1023) if self.last_ack else self.value
        env.memory[self.var] = value
        return None


@dataclass(frozen=True, slots=True)
class WaitFor(GuestOp):
    """Spin (one load per instruction) until guest memory ``var`` == ``value``."""

    var: str
    value: int

    def execute(self, prog: GuestProgram, env: GuestEnv) -> StepResult:
        if env.memory.get(self.var) != self.value:
            spin_yield()
            return RETRY
        return None


@dataclass(frozen=True, slots=True)
class WaitSet(GuestOp):
    """Spin (one load per instruction) until guest memory ``var`` is non-zero."""

    var: str

    def execute(self, prog: GuestProgram, env: GuestEnv) -> StepResult:
        if not env.memory.get(self.var):
            spin_yield()
            return RETRY
        return None


LAST: Final = -1
"""An INTID field meaning "the INTID this vCPU acknowledged last" (``intid: last``)."""


@dataclass(frozen=True, slots=True)
class Mmio(GuestOp):
    """A GICD_* access to ``intid``'s field; a read compares against ``expect`` if given.

    ``value`` is what a write stores in the interrupt's field (bit registers need none).
    """

    reg: MmioReg
    intid: int
    write: bool = True
    expect: int | None = None
    value: int = 0

    def target(self, prog: GuestProgram) -> int:
        """The INTID accessed (`LAST`: the one this vCPU acknowledged last)."""
        if self.intid != LAST:
            return self.intid
        return prog.acked[-1] if prog.acked else 1023

    def execute(self, prog: GuestProgram, env: GuestEnv) -> StepResult:
        access = MmioAccess(env.vcpu_id, self.reg, self.target(prog), self.write, self.value)
        return GuestExit(ExitReason.TRAP, access)

    def complete(self, prog: GuestProgram, value: int | None) -> bool:
        intid = self.target(prog)
        if self.write and self.reg == "ICACTIVER":
            prog.ledger.deactivated(prog.env.vcpu_id, intid,
                                    f"GICD_ICACTIVER write at pc{prog.pc}", "ICACTIVER")
            _log(GuestDeactivated, prog.env.vcpu_id, intid, how="icactiver", trapped=True)
        if not self.write and self.expect is not None and value != self.expect:
            prog.fail(f"{self.reg} read of INTID {intid}: expected {self.expect}, "
                      f"got {value}")
        return True


def now_step() -> int:
    """The scheduler's step (0 outside a run): when a program last made progress, for the
    runner's liveness monitor."""
    try:
        return current_actor().sched.step
    except OutsideActorError:
        return 0


class GuestProgram:
    """GuestCpu for a list of ``GuestOp``: runs them in order, records acks and failures.

    ``handler``: the IRQ exception handler. While unmasked (see ``Unmask``), a step
    that finds vIRQ asserted takes the exception: the handler runs masked, and
    returning from it (its last operation done) unmasks and resumes the program.
    ``ledger`` is shared by the VM's guests (cross-vCPU deactivations).
    """

    def __init__(self, name: str, ops: list[GuestOp], *, handler: list[GuestOp] | None = None,
                 ledger: GuestLedger | None = None) -> None:
        self.name = name
        self.ops = ops
        self.pc = 0
        self.handler = handler
        self.masked = True
        self.frames: list[tuple[list[GuestOp], int]] = []  # code the handler interrupted
        self.ledger = ledger if ledger is not None else GuestLedger()
        self.acked: list[int] = []
        self.handled_base = 0  # len(acked) at the last ResetStats (WfiUntil counts from it)
        self.eoi_stack: list[int] = []
        self.failures: list[str] = []
        self.irqs_taken = 0
        self._pending: GuestOp | None = None  # the instruction that exited
        self.last_progress = 0  # the scheduler step of the last operation completed
        self.polls: dict[tuple[int, int], int] = {}  # reads so far of each Poll in progress
        self.timer: Any = None  # the vCPU's kvm/arch_timer.ArchTimer, if the scenario uses it
        self._env: GuestEnv | None = None

    @property
    def done(self) -> bool:
        """Every operation ran (outside any handler)."""
        return not self.frames and self.pc >= len(self.ops)

    @property
    def env(self) -> GuestEnv:
        """The environment of the current instruction (set by ``step``)."""
        assert self._env is not None, "complete() before any step()"
        return self._env

    async def step(self, env: GuestEnv) -> GuestExit | None:
        """One instruction: a point, then the IRQ exception or the operation at pc."""
        await point(f"{self.name}.pc{self.pc}")
        self._env = env
        if self.done:
            return GuestExit(ExitReason.HALT)
        if not self.masked and self.handler is not None and env.cpuif.virq_vfiq()[0]:
            self.frames.append((self.ops, self.pc))  # take the IRQ exception
            self.ops, self.pc, self.masked = self.handler, 0, True
            self.irqs_taken += 1
            self._return_if_finished()
            return None
        op = self.ops[self.pc]
        out = op.execute(self, env)
        if isinstance(out, GuestExit):
            self._pending = op
            return out
        if out is None:
            self._advance()
        return None

    def complete(self, value: int | None) -> None:
        """The host finished the instruction that exited."""
        op, self._pending = self._pending, None
        if op is not None and op.complete(self, value):
            self._advance()

    def _advance(self) -> None:
        self.pc += 1
        self.last_progress = now_step()
        self._return_if_finished()

    def _return_if_finished(self) -> None:
        """ERET: the handler's last operation is done; unmask and resume."""
        while self.frames and self.pc >= len(self.ops):
            self.ops, self.pc = self.frames.pop()
            self.masked = False

    def eret(self) -> None:
        """Return from the IRQ handler now (its remaining operations are skipped)."""
        if self.frames:
            self.pc = len(self.ops)

    # --- bookkeeping the operations share -------------------------------------------

    def fail(self, what: str) -> None:
        """Record a failed guest expectation at the current instruction."""
        self.failures.append(f"{self.name} pc{self.pc}: {what}")

    def acked_intid(self, env: GuestEnv, intid: int, expect: int | None) -> None:
        """An IAR returned ``intid``; compare with ``expect``."""
        if not _is_special_value(intid):
            self.acked.append(intid)
            self.eoi_stack.append(intid)
            self.ledger.acked(env.vcpu_id, intid)
            _log(GuestAcked, env.vcpu_id, intid)
        if expect is not None and intid != expect:
            self.fail(f"IAR returned {intid}, expected {expect}")

    def eoied(self, env: GuestEnv, intid: int, deactivates: bool, *,
              trapped: bool = False) -> None:
        """An EOIR of ``intid`` executed: off the not-yet-EOIed stack; EOImode 0 deactivates."""
        if intid in self.eoi_stack:
            self.eoi_stack.remove(intid)
        if not _is_special_value(intid):
            _log(GuestEoied, env.vcpu_id, intid, deactivates=deactivates, trapped=trapped)
        if deactivates and not _is_special_value(intid):
            self.ledger.deactivated(env.vcpu_id, intid, f"EOIR at pc{self.pc}", "EOIR")

    def last_unfinished(self) -> int:
        """The most recent acknowledge not yet EOIed (1023 if none)."""
        return self.eoi_stack[-1] if self.eoi_stack else 1023
