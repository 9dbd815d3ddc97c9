"""The host's physical GIC as HW-mapped virtual interrupts see it, and the mapping itself.

A device (the arch timer, a forwarded VFIO interrupt) drives a physical level
line. While the physical interrupt is inactive and the line is high, the GIC
signals it to the host CPU it targets: the pCPU the vCPU runs on (a PPI is that
CPU's own, an SPI is routed there when mapped). The signal is a message in flight to
that pCPU's IPI mailbox, delivered within ``ipi_latency`` like an IPI, so a guest
running there exits to take it; once the CPU has IRQs enabled, the interrupt reaches
the host handler (``host_irq.py``, in hard-IRQ context), which acknowledges it
(physical Active, priority dropped: the host runs with EOImode 1) and injects the
virtual interrupt, on that pCPU, before its vCPU enters the guest again (run_loop.py
calls `host_irq.kvm_handle_taken_irqs` after the exit and before each entry); a vCPU
asleep in WFI is woken for it. A mapping with no vCPU to route to signals the
``hostirq`` actor, which stands for "whichever CPU the GIC picked".

Physical PPIs are per CPU: the same INTID on two CPUs are two interrupts, so a PPI's
state is kept under `phys_key` (INTID plus 1024 x CPU; an SPI's key is its INTID),
and that key is what ``irq.hwintid`` carries in the model; an LR's pINTID holds the
INTID itself (`phys_intid`), and the CPU that deactivates it picks its copy. The
physical interrupt stays Active until it is deactivated: by the guest through
the LR's HW bit (ICH_LR.HW: the CPU interface deactivates pINTID), by KVM when
it folds a pseudo-LR or resamples a line that dropped (vgic_irq_set_phys_active),
or by a guest GICD_ICACTIVER write. If the line is still high then, the GIC
signals it again.

vgic.c: kvm_vgic_map_phys_irq, kvm_vgic_unmap_phys_irq, kvm_vgic_set_owner,
vgic_irq_set_phys_active, vgic_get_phys_line_level (irq_set/get_irqchip_state).
This module does not import the VM (``vm.py`` owns a ``PhysGic``).
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vgic_actors.errors import ModelInternalError
from vgic_actors.runtime import Mailbox

if TYPE_CHECKING:
    from vgic_actors.kvm.irq import VgicIrq
    from vgic_actors.kvm.vm import Kvm
    from vgic_actors.runtime.kick import Pcpu, VcpuCore


@dataclass(slots=True)
class PhysLine:
    """One physical INTID: the device's line, the GIC's Active bit, and whether the GIC
    has signalled it to a CPU that has not acknowledged it yet (``signalled``)."""

    level: bool = False
    active: bool = False
    signalled: bool = False


PPI_CPU_STRIDE = 1024


def phys_key(hwintid: int, cpu: int | None) -> int:
    """The model's key for physical ``hwintid`` as CPU ``cpu`` sees it: a PPI (16..31) is
    banked per CPU, so CPU n's copy is ``hwintid + 1024 * n``; an SPI is global."""
    return hwintid + PPI_CPU_STRIDE * cpu if hwintid < 32 and cpu else hwintid


def phys_intid(key: int) -> int:
    """The physical INTID a `phys_key` stands for (what an LR's pINTID field holds)."""
    return key % PPI_CPU_STRIDE


@dataclass(frozen=True, slots=True)
class HwMapping:
    """Which vCPU's virtual INTID a physical INTID is forwarded to (irq->host_irq/hwintid),
    and the host CPU that takes the physical interrupt (``pcpu``, None: any)."""

    vcpu_id: int | None
    vintid: int
    owner: str | None
    pcpu: Pcpu | None = None
    core: VcpuCore | None = None  # the vCPU running on ``pcpu`` (woken from WFI by it)


@dataclass(eq=False)
class PhysGic:
    """The physical distributor + CPU interface state of the INTIDs KVM forwards.

    Implements lr.py's ``PhysicalIrqChip`` (line_level, set_active) for the fold's
    resampling. ``deactivated`` records every physical deactivation, in order
    (``Kvm.phys_deactivated`` is the same list); ``spurious_deactivations`` those of an
    interrupt that was not Active (a double deactivation: a bug somewhere).
    ``acks`` counts the host's acknowledges (one per physical firing handled).
    """

    lines: dict[int, PhysLine] = field(default_factory=dict)
    mappings: dict[int, HwMapping] = field(default_factory=dict)
    deactivated: list[int] = field(default_factory=list)
    spurious_deactivations: list[int] = field(default_factory=list)
    acks: list[int] = field(default_factory=list)
    taken: dict[int, None] = field(default_factory=dict)  # taken by a CPU, handler not run
    _mailbox: Mailbox | None = None
    _start: Callable[[], None] | None = None

    def line(self, hwintid: int) -> PhysLine:
        """The state of physical INTID ``hwintid`` (created inactive and low)."""
        st = self.lines.get(hwintid)
        if st is None:
            st = self.lines[hwintid] = PhysLine()
        return st

    def attach(self, mailbox: Mailbox, start: Callable[[], None]) -> None:
        """Where physical interrupts are signalled (the host-interrupt actor's mailbox);
        ``start`` spawns that actor, on the first interrupt only (machine.py)."""
        self._mailbox, self._start = mailbox, start

    # --- PhysicalIrqChip (lr.py) -------------------------------------------------------

    def line_level(self, hwintid: int) -> bool:
        """vgic.c: vgic_get_phys_line_level (irq_get_irqchip_state PENDING): the line now."""
        return self.line(hwintid).level

    def set_active(self, hwintid: int, active: bool) -> None:
        """vgic.c: vgic_irq_set_phys_active (irq_set_irqchip_state ACTIVE), by KVM."""
        if active:
            self.line(hwintid).active = True
        else:
            self.deactivate(hwintid)

    # --- the GIC itself ---------------------------------------------------------------

    def deactivate(self, hwintid: int) -> None:
        """Deactivate physical ``hwintid`` (ICC_DIR_EL1 by the HW bit of an LR, or KVM).

        Also the CPU interface's ``on_physical_deactivate`` callback. Records it; if the
        line is still high the GIC signals the interrupt again.
        """
        st = self.line(hwintid)
        self.deactivated.append(hwintid)
        if not st.active:
            self.spurious_deactivations.append(hwintid)
        st.active = False
        self._maybe_signal(hwintid)

    def deactivate_on(self, cpu: int, pintid: int) -> None:
        """CPU ``cpu`` deactivates physical ``pintid`` (an LR's HW bit: ICH_LR.pINTID names
        the INTID; a PPI is that CPU's own copy). The CPU interface's callback."""
        self.deactivate(phys_key(pintid, cpu))

    def drive(self, hwintid: int, level: bool) -> None:
        """The device sets its output line (no point: see ``phys_irq_set_line``)."""
        self.line(hwintid).level = level
        self._maybe_signal(hwintid)

    def host_ack(self, hwintid: int) -> bool:
        """The host CPU takes the interrupt (ICC_IAR1_EL1 then EOIR with EOImode 1).

        True: it is now Active and the handler runs. False: the line dropped since it
        was signalled (a level interrupt no longer pending: the IAR reads 1023).
        """
        st = self.line(hwintid)
        st.signalled = False
        if not st.level or st.active:
            return False
        st.active = True
        self.acks.append(hwintid)
        return True

    def _maybe_signal(self, hwintid: int) -> None:
        st = self.line(hwintid)
        if not st.level or st.active or st.signalled or hwintid not in self.mappings:
            return
        if self._mailbox is None or self._start is None:
            raise ModelInternalError(
                f"physical INTID {hwintid} fired but no host-interrupt actor is attached "
                "(start the VM with machine.start_vm)")
        st.signalled = True
        mapping = self.mappings[hwintid]
        pcpu = mapping.pcpu
        if pcpu is None:
            self._forward(hwintid)
            return
        pcpu.ipi.post(lambda: self._taken_by(hwintid, mapping), kind="phys_irq", src="gic",
                      on_delivered=pcpu._delivered, latency=pcpu.ipi_latency)

    def _taken_by(self, hwintid: int, mapping: HwMapping) -> None:
        """The target CPU takes the interrupt (its IRQs are enabled): the host handler runs
        on it before its vCPU re-enters the guest (the run loop's `take`); a vCPU asleep
        in WFI is woken for that (an interrupt ends the idle wait)."""
        self.taken[hwintid] = None
        if mapping.core is not None:
            mapping.core.wait.wake_nowait()

    def _forward(self, hwintid: int) -> None:
        """An interrupt with no CPU to target: the ``hostirq`` actor runs its handler."""
        assert self._mailbox is not None
        assert self._start is not None
        self.taken[hwintid] = None
        self._start()
        self._mailbox.post(hwintid, kind="phys_irq", src="gic")

    def take(self, hwintid: int) -> bool:
        """Claim a taken interrupt for its handler (False: another context ran it)."""
        return self.taken.pop(hwintid, False) is None

    def taken_on(self, pcpu: Pcpu | None) -> list[int]:
        """The taken interrupts whose handler should run on ``pcpu``, oldest first."""
        return [k for k in self.taken if (m := self.mappings.get(k)) is not None
                and m.pcpu is pcpu]


def vgic_irq_set_phys_active(kvm: Kvm, hwintid: int, active: bool) -> None:
    """vgic.c: vgic_irq_set_phys_active."""
    kvm.phys.set_active(hwintid, active)


async def kvm_vgic_map_phys_irq(kvm: Kvm, vcpu_id: int | None, host_irq: int, vintid: int,
                                *, sw_resample: bool = False, owner: str | None = None) -> int:
    """Forward physical ``host_irq`` to ``vintid`` (of ``vcpu_id`` if private).

    vgic.c: kvm_vgic_map_phys_irq -> kvm_vgic_map_irq under irq_lock: irq->hw, hwintid,
    ops. ``sw_resample``: ops with VGIC_IRQ_SW_RESAMPLE (hosts whose GIC cannot hand the
    active state to the guest: no HW bit in the LR, KVM deactivates at fold). ``owner``:
    kvm_vgic_set_owner as the arch timer does, so userspace injections are filtered.
    Returns an errno (0, or EINVAL for an INTID the VM does not have).
    """
    vcpu = kvm.vcpus[vcpu_id] if vcpu_id is not None else None
    irq = kvm.vgic_get_irq(vcpu, vintid)
    if irq is None or (vintid < 32 and vcpu is None):
        return errno.EINVAL
    if owner is not None:
        err = await kvm_vgic_set_owner(kvm, vcpu_id, vintid, owner)
        if err:
            return err
    async with irq.lock:
        kvm_vgic_map_irq(kvm, irq, vcpu_id, host_irq, sw_resample=sw_resample, owner=owner)
    return 0


def kvm_vgic_map_irq(kvm: Kvm, irq: VgicIrq, vcpu_id: int | None, host_irq: int, *,
                     sw_resample: bool = False, owner: str | None = None) -> None:
    """vgic.c: kvm_vgic_map_irq, the part done with irq_lock held (or before any vCPU runs,
    as a scenario's ``irqs: [{hw: N}]`` does)."""
    target = vcpu_id if irq.intid < 32 else irq.target_vcpu
    key = phys_key(host_irq, vcpu_id)
    irq.hw = True
    irq.hwintid = key
    irq.needs_resampling = sw_resample
    core = kvm.vcpus[target].core if target is not None and target < len(kvm.vcpus) else None
    pcpu = core.pcpu if core is not None else None
    kvm.phys.mappings[key] = HwMapping(vcpu_id, irq.intid, owner, pcpu,
                                       core if pcpu is not None else None)
    kvm.phys.line(key)


async def kvm_vgic_unmap_phys_irq(kvm: Kvm, vcpu_id: int | None, vintid: int) -> int:
    """vgic.c: kvm_vgic_unmap_phys_irq: clear irq->hw and hwintid under irq_lock."""
    vcpu = kvm.vcpus[vcpu_id] if vcpu_id is not None else None
    irq = kvm.vgic_get_irq(vcpu, vintid)
    if irq is None:
        return errno.EINVAL
    async with irq.lock:
        hwintid, irq.hw, irq.hwintid, irq.needs_resampling = irq.hwintid, False, 0, False
    kvm.phys.mappings.pop(hwintid, None)
    return 0


async def kvm_vgic_set_owner(kvm: Kvm, vcpu_id: int | None, intid: int, owner: str) -> int:
    """vgic.c: kvm_vgic_set_owner: claim ``intid`` for an in-kernel device (EBUSY if another
    owner has it). Injections with another owner (userspace: None) are then ignored."""
    vcpu = kvm.vcpus[vcpu_id] if vcpu_id is not None else None
    irq = kvm.vgic_get_irq(vcpu, intid)
    if irq is None:
        return errno.EINVAL
    async with irq.lock:
        if irq.owner is not None and irq.owner != owner:
            return errno.EBUSY
        irq.owner = owner
    return 0
