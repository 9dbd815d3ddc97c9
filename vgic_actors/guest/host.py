"""The VMM and its devices: host actions (the ioctls a VMM makes and the lines a device
drives), a guest operation asking the VMM for one, and a scripted VMM/device actor.

Actions are frozen dataclasses; ``perform(kvm, action)`` runs one on the calling actor
and returns an errno (0 on success; see kvm/userspace.py for the convention).

Two ways to run them:

* ``Host(action)`` in a guest program: the selftest's GUEST_SYNC. The vCPU exits to
  userspace (ExitReason.USERSPACE), the action runs on the vCPU's pCPU actor (the
  VMM thread is the vCPU thread there), and the guest resumes on re-entry. The vCPU is
  out of KVM_RUN meanwhile, which the vGIC device attributes require of *every* vCPU.
* ``HostProgram``: an actor of its own (a VMM thread or a device model) running a
  script of actions and waits. Each action is a request to the distributor actor
  (``VmIoctl``), so an injection is a message in flight the scheduler may delay; the
  distributor answers with the handler, which runs on the program's own actor (the
  ioctl runs on the caller's thread, concurrently with the guests' GICD accesses, as
  in the kernel). ``direct=True`` skips the message round trip.
"""

from __future__ import annotations

import errno
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TypeAlias

from vgic_actors.guest.program import GuestOp, GuestProgram, StepResult, now_step
from vgic_actors.kvm.distributor import kvm_io_bus_access
from vgic_actors.kvm.guest_api import GuestEnv
from vgic_actors.kvm.host_irq import phys_irq_set_line
from vgic_actors.kvm.irq_routing import RoutingEntry
from vgic_actors.kvm.machine import Machine
from vgic_actors.kvm.phys_gic import kvm_vgic_map_phys_irq
from vgic_actors.kvm.userspace import (
    UaccessReg,
    VmIoctl,
    eventfd_write,
    kvm_arm_irq_line_for,
    kvm_irqfd_assign,
    kvm_irqfd_deassign,
    kvm_send_userspace_msi,
    kvm_set_gsi_routing,
    kvm_vgic_get_level_info,
    kvm_vgic_set_level_info,
    kvm_vm_ioctl_irq_line,
    level_info_attr,
    vgic_uaccess_write,
)
from vgic_actors.kvm.vm import Kvm
from vgic_actors.runtime import ExitReason, GuestExit, point, spin_yield

MSI_BLOCKED = -1
"""What ``perform`` returns for a KVM_SIGNAL_MSI the guest's ITS mapping blocked (the ioctl
returned 0); a delivered MSI (the ioctl returned 1) gives 0."""

# --- actions ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InjectEdge:
    """KVM_IRQ_LINE level 1 then 0 (the selftest's KVM_INJECT_EDGE_IRQ_LINE). INTIDs below
    32 are sent as PPIs of ``vcpu`` (SGIs: EINVAL), the others as SPIs."""

    intid: int
    vcpu: int = 0


@dataclass(frozen=True, slots=True)
class SetLevel:
    """KVM_IRQ_LINE with ``level`` (KVM_SET_IRQ_LINE / KVM_SET_IRQ_LINE_HIGH)."""

    intid: int
    level: bool = True
    vcpu: int = 0


@dataclass(frozen=True, slots=True)
class SetLevelInfo:
    """KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO: read the 32 line levels around ``intid``, set or
    clear its bit, write them back (KVM_SET_LEVEL_INFO_HIGH). ``vcpu``: whose PPIs."""

    intid: int
    level: bool = True
    vcpu: int = 0


@dataclass(frozen=True, slots=True)
class WriteIspendr:
    """A userspace write of ``intid``'s GICD/GICR_ISPENDR bit (KVM_WRITE_ISPENDR)."""

    intid: int
    vcpu: int = 0


@dataclass(frozen=True, slots=True)
class WriteIsactiver:
    """A userspace write of ``intid``'s GICD/GICR_ISACTIVER bit (KVM_WRITE_ISACTIVER)."""

    intid: int
    vcpu: int = 0


LAST_ACKED = -1
"""WriteUaccess.intid in a guest's ``host`` op: the INTID it acknowledged last."""


@dataclass(frozen=True, slots=True)
class WriteUaccess:
    """A userspace write of 1 to ``intid``'s GICD/GICR_ISACTIVER, ICACTIVER or ICPENDR bit
    (KVM_DEV_ARM_VGIC_GRP_DIST_REGS / REDIST_REGS); `LAST_ACKED` from a guest's handler."""

    reg: UaccessReg
    intid: int
    vcpu: int = 0


@dataclass(frozen=True, slots=True)
class SetGsiRouting:
    """KVM_SET_GSI_ROUTING with ``entries`` (replacing the default GSI n -> SPI 32+n)."""

    entries: tuple[RoutingEntry, ...]


@dataclass(frozen=True, slots=True)
class IrqfdAssign:
    """KVM_IRQFD: eventfd ``eventfd`` raises ``gsi``. ``resample``: KVM_IRQFD_FLAG_RESAMPLE
    with resamplefd ``resamplefd`` (default ``<eventfd>.resample``)."""

    gsi: int
    eventfd: str
    resample: bool = False
    resamplefd: str | None = None

    @property
    def resample_name(self) -> str | None:
        """The resamplefd's name, if resampling."""
        if not self.resample:
            return None
        return self.resamplefd if self.resamplefd is not None else f"{self.eventfd}.resample"


@dataclass(frozen=True, slots=True)
class IrqfdDeassign:
    """KVM_IRQFD with KVM_IRQFD_FLAG_DEASSIGN."""

    gsi: int
    eventfd: str


@dataclass(frozen=True, slots=True)
class IrqfdSignal:
    """The device raises its irqfd: a write(2) to eventfd ``eventfd`` from a thread
    (``context="task"``), or eventfd_signal from the device's interrupt handler
    (``"hardirq"``: VFIO INTx / vfio-platform)."""

    eventfd: str
    context: str = "task"


@dataclass(frozen=True, slots=True)
class SignalMsi:
    """KVM_SIGNAL_MSI with DeviceID ``devid`` and EventID ``eventid`` (KVM_MSI_VALID_DEVID)."""

    devid: int
    eventid: int


@dataclass(frozen=True, slots=True)
class MapPhys:
    """Forward physical INTID ``hwintid`` to ``vintid`` (of ``vcpu`` for a PPI):
    kvm_vgic_map_phys_irq, as the arch timer does at first run, owned by ``owner``
    (None: not owned, userspace may inject it too). ``sw_resample``: the host GIC cannot
    give the active state to the guest (VGIC_IRQ_SW_RESAMPLE)."""

    vintid: int
    hwintid: int
    vcpu: int = 0
    sw_resample: bool = False
    owner: str | None = "device"


@dataclass(frozen=True, slots=True)
class PhysAssert:
    """The device raises physical line ``hwintid``."""

    hwintid: int


@dataclass(frozen=True, slots=True)
class PhysDeassert:
    """The device lowers physical line ``hwintid``."""

    hwintid: int


HostAction: TypeAlias = (
    InjectEdge | SetLevel | SetLevelInfo | WriteIspendr | WriteIsactiver | SetGsiRouting
    | IrqfdAssign | IrqfdDeassign | IrqfdSignal | SignalMsi | MapPhys | PhysAssert
    | PhysDeassert | WriteUaccess
)


async def _irq_line(kvm: Kvm, intid: int, level: bool, vcpu: int) -> int:
    return await kvm_vm_ioctl_irq_line(kvm, kvm_arm_irq_line_for(intid, vcpu), level)


async def perform(kvm: Kvm, action: HostAction) -> int:
    """Run ``action`` on the calling actor: its errno, 0 on success.

    KVM_IRQ_LINE cannot carry an INTID above 0xffff: ValueError (a script error).
    """
    match action:
        case InjectEdge(intid, vcpu):
            return (await _irq_line(kvm, intid, True, vcpu)
                    or await _irq_line(kvm, intid, False, vcpu))
        case SetLevel(intid, level, vcpu):
            return await _irq_line(kvm, intid, level, vcpu)
        case SetLevelInfo(intid, level, vcpu):
            attr = level_info_attr(vcpu, intid)
            err, val = await kvm_vgic_get_level_info(kvm, attr)
            if err:
                return err
            bit = 1 << (intid % 32)
            return await kvm_vgic_set_level_info(kvm, attr, val | bit if level else val & ~bit)
        case WriteIspendr(intid, vcpu):
            return await _uaccess(kvm, vcpu, "ISPENDR", intid)
        case WriteIsactiver(intid, vcpu):
            return await _uaccess(kvm, vcpu, "ISACTIVER", intid)
        case WriteUaccess(reg, intid, vcpu):  # LAST_ACKED outside a guest: no such INTID
            return errno.EINVAL if intid < 0 else await _uaccess(kvm, vcpu, reg, intid)
        case SetGsiRouting(entries):
            return await kvm_set_gsi_routing(kvm, entries)
        case IrqfdAssign(gsi, eventfd):
            return await kvm_irqfd_assign(kvm, eventfd, gsi, action.resample_name)
        case IrqfdDeassign(gsi, eventfd):
            return await kvm_irqfd_deassign(kvm, eventfd, gsi)
        case IrqfdSignal(eventfd, context):
            return await eventfd_write(kvm, eventfd, from_hardirq=context == "hardirq")
        case SignalMsi(devid, eventid):
            ret = await kvm_send_userspace_msi(kvm, devid, eventid)
            return -ret if ret < 0 else (0 if ret else MSI_BLOCKED)
        case MapPhys(vintid, hwintid, vcpu, sw_resample, owner):
            return await kvm_vgic_map_phys_irq(kvm, vcpu if vintid < 32 else None, hwintid,
                                               vintid, sw_resample=sw_resample, owner=owner)
        case PhysAssert(hwintid):
            await phys_irq_set_line(kvm, hwintid, True)
            return 0
        case PhysDeassert(hwintid):
            await phys_irq_set_line(kvm, hwintid, False)
            return 0
    raise TypeError(f"not a host action: {action!r}")


async def _uaccess(kvm: Kvm, vcpu: int, reg: UaccessReg, intid: int) -> int:
    return await vgic_uaccess_write(kvm, vcpu, reg, intid)


def action_name(action: HostAction) -> str:
    """A short label for logs and message kinds (``SetLevel(33)``)."""
    first = next(iter(action.__dataclass_fields__), None)
    arg = getattr(action, first) if first is not None else ""
    return f"{type(action).__name__}({arg})"


# --- the guest asks its VMM ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _VmmCall:
    """The USERSPACE exit's detail: kvm/guest_api.py's ``VmmRequest``."""

    action: HostAction

    async def vmm_perform(self, kvm: Kvm) -> int:
        return await perform(kvm, self.action)


@dataclass(frozen=True, slots=True)
class Host(GuestOp):
    """GUEST_SYNC: ask the VMM to perform ``action``; a failure is recorded unless the
    errno equals ``expect_errno``. The vCPU exits to userspace and resumes after it."""

    action: HostAction
    expect_errno: int = 0

    def execute(self, prog: GuestProgram, env: GuestEnv) -> StepResult:
        action = self.action
        if isinstance(action, WriteUaccess) and action.intid == LAST_ACKED:
            action = replace(action, intid=prog.acked[-1] if prog.acked else 1023)
        return GuestExit(ExitReason.USERSPACE, _VmmCall(action))

    def complete(self, prog: GuestProgram, value: int | None) -> bool:
        if value != self.expect_errno:
            prog.fail(f"host {action_name(self.action)}: errno {value}, "
                      f"expected {self.expect_errno}")
        return True


@dataclass(frozen=True, slots=True)
class LowerLine(GuestOp):
    """GUEST_SYNC: KVM_IRQ_LINE level 0 for the INTID this vCPU acknowledged last (the
    selftests' generic handler lowers a level interrupt's line this way)."""

    def execute(self, prog: GuestProgram, env: GuestEnv) -> StepResult:
        intid = prog.acked[-1] if prog.acked else 1023
        return GuestExit(ExitReason.USERSPACE,
                         _VmmCall(SetLevel(intid, level=False, vcpu=env.vcpu_id)))

    def complete(self, prog: GuestProgram, value: int | None) -> bool:
        if value:
            prog.fail(f"host set_level 0 of the last INTID: errno {value}")
        return True


# --- the VMM / device as an actor ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class Do:
    """A host action with its expected errno (a bare action in a script expects 0)."""

    action: HostAction
    expect_errno: int = 0


@dataclass(frozen=True, slots=True)
class HostWaitFor:
    """Spin (one load per step) until guest memory ``var`` == ``value``."""

    var: str
    value: int


@dataclass(frozen=True, slots=True)
class HostStore:
    """Write guest memory ``var`` = ``value`` (the VMM tells the guest something)."""

    var: str
    value: int


@dataclass(frozen=True, slots=True)
class WaitResample:
    """Block until eventfd ``resamplefd`` is signalled (the guest EOIed a resampled level
    interrupt), then read it (resetting its count)."""

    resamplefd: str


HostStep: TypeAlias = HostAction | Do | HostWaitFor | HostStore | WaitResample


class HostProgram:
    """A VMM thread or device model: runs ``steps`` in order as its own actor.

    ``results`` holds each action's errno in order; ``failures`` the mismatches with the
    expected errno; ``resamples`` how many resample signals each WaitResample consumed.
    """

    def __init__(self, name: str, steps: Sequence[HostStep], *, direct: bool = False) -> None:
        self.name = name
        self.steps = list(steps)
        self.direct = direct
        self.pc = 0
        self.results: list[int] = []
        self.failures: list[str] = []
        self.resamples: list[int] = []
        self.last_progress = 0  # the scheduler step of the last step completed

    @property
    def done(self) -> bool:
        """Every step ran."""
        return self.pc >= len(self.steps)

    async def run(self, machine: Machine) -> None:
        """The actor body (machine.start_vm spawns it)."""
        while not self.done:
            await self.step(machine)
            self.pc += 1
            self.last_progress = now_step()

    async def step(self, machine: Machine) -> None:
        """Run the step at ``pc``."""
        step = self.steps[self.pc]
        if isinstance(step, HostWaitFor):
            while True:
                await point(f"{self.name}.pc{self.pc}")
                if machine.memory.get(step.var) == step.value:
                    return
                spin_yield()
        if isinstance(step, HostStore):
            await point(f"{self.name}.pc{self.pc}")
            machine.memory[step.var] = step.value
            return
        if isinstance(step, WaitResample):
            fd = machine.kvm.irq_routing.eventfd(step.resamplefd)
            self.resamples.append(await fd.eventfd_read())
            return
        action, expect = (step.action, step.expect_errno) if isinstance(step, Do) else (step, 0)
        err = await self.ioctl(machine, action)
        self.results.append(err)
        if err != expect:
            self.failures.append(f"{self.name} pc{self.pc}: {action_name(action)}: errno "
                                 f"{err}, expected {expect}")

    async def ioctl(self, machine: Machine, action: HostAction) -> int:
        """Run one action: directly, or as a request to the distributor actor."""
        if self.direct or machine.distributor is None:
            return await perform(machine.kvm, action)

        async def call(kvm: Kvm, action: HostAction = action) -> int:
            return await perform(kvm, action)

        name = action_name(action)
        reply = await kvm_io_bus_access(machine.distributor, VmIoctl(name, call),
                                        kind=f"ioctl:{name}")
        if not isinstance(reply, int):
            return errno.EIO
        return reply
