"""The kernel side of the VMM's interrupt ioctls: KVM_IRQ_LINE, the vGIC device
attributes (LEVEL_INFO, userspace ISPENDR/ISACTIVER writes), GSI routing, irqfds
with their resampler, and eventfd writes.

Convention: every entry point returns an errno as a positive int (0 = success),
what the VMM sees in ``errno`` after the ioctl returns -1 (the kernel returns
``-EINVAL``, the model ``errno.EINVAL``). Errors never raise; only model bugs do.

Where the calls run: on whichever actor calls them, as an ioctl runs on the
calling thread. A guest's ``Host`` request (guest/host.py) runs them on the
vCPU's pCPU actor after the vCPU has left KVM_RUN; a VMM or device actor
(guest/host.py ``HostProgram``) sends them to the distributor actor as
``VmIoctl`` messages, so each injection is a message in flight (design.md 3) and
the distributor serialises them with the guests' GICD accesses.

The device-attribute register accesses (vgic-kvm-device.c:
vgic_v3_attr_regs_access) need every vCPU out of KVM_RUN
(kvm_trylock_all_vcpus): EBUSY otherwise, as on a real VM whose other vCPUs run.
"""

from __future__ import annotations

import errno
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from vgic_actors.arch.intid import PPI_MIN, SPI_MIN, is_sgi
from vgic_actors.events import IrqfdResampled
from vgic_actors.kvm.irq import IrqConfig
from vgic_actors.kvm.irq_routing import (
    KVM_IRQCHIP_NUM_PINS,
    KVM_MAX_IRQ_ROUTES,
    KVM_MSI_VALID_DEVID,
    KVM_NR_IRQCHIPS,
    IrqAckNotifier,
    Irqfd,
    IrqfdResampler,
    KvmIrqRouting,
    RoutingEntry,
)
from vgic_actors.kvm.its import vgic_its_inject_msi
from vgic_actors.kvm.vgic import (
    _log,
    _logging,
    kvm_vgic_inject_irq,
    vgic_model_needs_bcst_kick,
    vgic_queue_irq_unlock,
)
from vgic_actors.kvm.vm import Kvm
from vgic_actors.runtime import current_actor, hardirq, point

# uapi asm/kvm.h: the KVM_IRQ_LINE irq field
KVM_ARM_IRQ_VCPU2_SHIFT, KVM_ARM_IRQ_VCPU2_MASK = 28, 0xF
KVM_ARM_IRQ_TYPE_SHIFT, KVM_ARM_IRQ_TYPE_MASK = 24, 0xF
KVM_ARM_IRQ_VCPU_SHIFT, KVM_ARM_IRQ_VCPU_MASK = 16, 0xFF
KVM_ARM_IRQ_NUM_SHIFT, KVM_ARM_IRQ_NUM_MASK = 0, 0xFFFF
KVM_ARM_IRQ_TYPE_CPU, KVM_ARM_IRQ_TYPE_SPI, KVM_ARM_IRQ_TYPE_PPI = 0, 1, 2

# uapi asm/kvm.h: KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO attr
KVM_DEV_ARM_VGIC_V3_MPIDR_SHIFT = 32
KVM_DEV_ARM_VGIC_LINE_LEVEL_INFO_SHIFT = 10
KVM_DEV_ARM_VGIC_LINE_LEVEL_INFO_MASK = 0x3FFFFF << 10
KVM_DEV_ARM_VGIC_LINE_LEVEL_INTID_MASK = 0x3FF
VGIC_LEVEL_INFO_LINE_LEVEL = 0

UaccessReg = Literal["ISPENDR", "ISACTIVER", "ICACTIVER", "ICPENDR"]


def kvm_arm_irq_line_encode(irq_type: int, vcpu_idx: int, irq_num: int) -> int:
    """The ``irq`` word of struct kvm_irq_level as a VMM builds it (uapi layout).

    Raises ValueError for an ``irq_num`` wider than the 16-bit field: such an INTID
    cannot be expressed (the selftest skips it for that reason).
    """
    if not 0 <= irq_num <= KVM_ARM_IRQ_NUM_MASK:
        raise ValueError(f"irq_num {irq_num:#x} does not fit KVM_ARM_IRQ_NUM_MASK")
    vcpu2, vcpu = divmod(vcpu_idx, KVM_ARM_IRQ_VCPU_MASK + 1)
    return (((vcpu2 & KVM_ARM_IRQ_VCPU2_MASK) << KVM_ARM_IRQ_VCPU2_SHIFT)
            | ((irq_type & KVM_ARM_IRQ_TYPE_MASK) << KVM_ARM_IRQ_TYPE_SHIFT)
            | (vcpu << KVM_ARM_IRQ_VCPU_SHIFT) | irq_num)


def kvm_arm_irq_line_for(intid: int, vcpu_idx: int = 0) -> int:
    """The KVM_IRQ_LINE word for a GIC INTID: PPI type (with ``vcpu_idx``) below 32,
    SPI type otherwise; what the selftest's kvm_arm_irq_line does."""
    if intid < SPI_MIN:
        return kvm_arm_irq_line_encode(KVM_ARM_IRQ_TYPE_PPI, vcpu_idx, intid)
    return kvm_arm_irq_line_encode(KVM_ARM_IRQ_TYPE_SPI, 0, intid)


async def _inject(kvm: Kvm, vcpu_id: int | None, intid: int, level: bool) -> int:
    """vgic.c: kvm_vgic_inject_irq with its errors (EINVAL: no such INTID; a filtered
    injection, e.g. a line owned by an in-kernel device, is a silent success)."""
    if vcpu_id is None and intid < SPI_MIN:
        return errno.EINVAL
    vcpu = kvm.vcpus[vcpu_id] if vcpu_id is not None else None
    if kvm.vgic_get_irq(vcpu, intid) is None:
        return errno.EINVAL
    await kvm_vgic_inject_irq(kvm, vcpu_id, intid, level)
    return 0


async def kvm_vm_ioctl_irq_line(kvm: Kvm, irq: int, level: bool) -> int:
    """KVM_IRQ_LINE. arm.c: kvm_vm_ioctl_irq_line (merged: kvm_get_vcpu_by_id, VCPU2 field).

    CPU type: ENXIO with the in-kernel vGIC. PPI: the vCPU must exist (EINVAL) and
    16 <= INTID < 32 (EINVAL; no exception for the timer PPIs: an injection into a
    line the arch timer owns is accepted and ignored by vgic_validate_injection).
    SPI: INTID >= 32 (EINVAL), then kvm_vgic_inject_irq (EINVAL beyond 32 + nr_spis).
    """
    irq_type = (irq >> KVM_ARM_IRQ_TYPE_SHIFT) & KVM_ARM_IRQ_TYPE_MASK
    vcpu_id = (irq >> KVM_ARM_IRQ_VCPU_SHIFT) & KVM_ARM_IRQ_VCPU_MASK
    vcpu_id += ((irq >> KVM_ARM_IRQ_VCPU2_SHIFT) & KVM_ARM_IRQ_VCPU2_MASK) * (
        KVM_ARM_IRQ_VCPU_MASK + 1)
    irq_num = (irq >> KVM_ARM_IRQ_NUM_SHIFT) & KVM_ARM_IRQ_NUM_MASK
    if irq_type == KVM_ARM_IRQ_TYPE_CPU:
        return errno.ENXIO  # irqchip_in_kernel
    if irq_type == KVM_ARM_IRQ_TYPE_PPI:
        if vcpu_id >= len(kvm.vcpus):
            return errno.EINVAL
        if not PPI_MIN <= irq_num < SPI_MIN:
            return errno.EINVAL
        return await _inject(kvm, vcpu_id, irq_num, level)
    if irq_type == KVM_ARM_IRQ_TYPE_SPI:
        if irq_num < SPI_MIN:
            return errno.EINVAL
        return await _inject(kvm, None, irq_num, level)
    return errno.EINVAL


# --- vGIC device attributes (vgic-kvm-device.c, vgic-mmio*.c uaccess) ----------------


async def kvm_trylock_all_vcpus(kvm: Kvm) -> bool:
    """kvm_main.c: kvm_trylock_all_vcpus: every vCPU mutex, or none (a vCPU inside
    KVM_RUN holds its own). One point: the vCPUs' states are read unlocked."""
    await point("kvm_trylock_all_vcpus")
    return all(v.in_userspace for v in kvm.vcpus)


def level_info_attr(vcpu_id: int, intid: int) -> int:
    """The KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO attr word the selftest builds for ``intid``: its
    32-aligned base in the low word (bits 10 and up land in the info field) and the vCPU
    (its MPIDR: the vCPU number here) in the high word."""
    return (vcpu_id << KVM_DEV_ARM_VGIC_V3_MPIDR_SHIFT) | ((32 * (intid // 32)) & 0xFFFFFFFF)


def _parse_level_info(kvm: Kvm, attr: int) -> tuple[int, int] | int:
    """vgic_v3_parse_attr + the LEVEL_INFO case of vgic_v3_attr_regs_access: the vCPU
    and INTID, or an errno (ENXIO: GICv2 model; EINVAL: no such vCPU, info field not
    LINE_LEVEL, INTID not a multiple of 32)."""
    if kvm.config.v2_model:
        return errno.ENXIO
    vcpu_id = attr >> KVM_DEV_ARM_VGIC_V3_MPIDR_SHIFT
    if vcpu_id >= len(kvm.vcpus):
        return errno.EINVAL
    info = (attr & KVM_DEV_ARM_VGIC_LINE_LEVEL_INFO_MASK) >> KVM_DEV_ARM_VGIC_LINE_LEVEL_INFO_SHIFT
    if info != VGIC_LEVEL_INFO_LINE_LEVEL:
        return errno.EINVAL
    intid = attr & KVM_DEV_ARM_VGIC_LINE_LEVEL_INTID_MASK
    if intid % 32:  # vgic_v3_line_level_info_uaccess
        return errno.EINVAL
    return vcpu_id, intid


def _nr_irqs(kvm: Kvm) -> int:
    return kvm.dist.nr_spis + SPI_MIN


async def kvm_vgic_get_level_info(kvm: Kvm, attr: int) -> tuple[int, int]:
    """KVM_GET_DEVICE_ATTR, group LEVEL_INFO: (errno, 32 line levels from attr's INTID).

    vgic-mmio.c: vgic_read_irq_line_level_info: bit i set when INTID+i is a level
    interrupt with its line high; SGIs and INTIDs beyond the VM read as 0.
    """
    parsed = _parse_level_info(kvm, attr)
    if isinstance(parsed, int):
        return parsed, 0
    if not await kvm_trylock_all_vcpus(kvm):
        return errno.EBUSY, 0
    vcpu_id, intid = parsed
    vcpu = kvm.vcpus[vcpu_id]
    val = 0
    async with kvm.dist.config_lock:
        for i in range(32):
            if intid + i < 16 or intid + i >= _nr_irqs(kvm):
                continue
            irq = kvm.vgic_get_irq(vcpu, intid + i)
            if irq is not None and irq.config is IrqConfig.LEVEL and irq.line_level:
                val |= 1 << i
    return 0, val


async def kvm_vgic_set_level_info(kvm: Kvm, attr: int, val: int) -> int:
    """KVM_SET_DEVICE_ATTR, group LEVEL_INFO (line levels restored by the VMM).

    vgic-kvm-device.c: vgic_v3_attr_regs_access -> vgic_v3_line_level_info_uaccess ->
    vgic-mmio.c: vgic_write_irq_line_level_info: for each of the 32 INTIDs from attr's
    (skipping SGIs and INTIDs beyond the VM, silently), set line_level whatever the
    trigger and queue when it rises. Attr INTIDs above 1023 land in the info field:
    EINVAL; 1020..1023 are accepted and ignored.
    """
    parsed = _parse_level_info(kvm, attr)
    if isinstance(parsed, int):
        return parsed
    if not await kvm_trylock_all_vcpus(kvm):
        return errno.EBUSY
    vcpu_id, intid = parsed
    vcpu = kvm.vcpus[vcpu_id]
    async with kvm.dist.config_lock:
        for i in range(32):
            if intid + i < 16 or intid + i >= _nr_irqs(kvm):
                continue
            irq = kvm.vgic_get_irq(vcpu, intid + i)
            if irq is None:
                continue
            await irq.lock.acquire()
            irq.line_level = bool(val >> i & 1)
            if irq.line_level:
                await vgic_queue_irq_unlock(kvm, irq)
            else:
                irq.lock.release()
    return 0


async def vgic_uaccess_write(kvm: Kvm, vcpu_id: int, reg: UaccessReg, intid: int) -> int:
    """KVM_SET_DEVICE_ATTR, DIST_REGS (SPIs) / REDIST_REGS (vCPU ``vcpu_id``'s SGIs and
    PPIs): write 1 to ``intid``'s bit of GICD_ISPENDR / ISACTIVER / ICACTIVER / ICPENDR.

    vgic-mmio.c: vgic_uaccess_write_spending (__set_pending, is_user): latch pending
    (GICv2-model SGI: source = the vCPU itself) and queue; unlike the guest's write,
    no physical active state for HW interrupts.
    vgic-mmio.c: vgic_mmio_uaccess_write_sactive -> __vgic_mmio_write_sactive ->
    vgic_mmio_change_active with no running vCPU: unlike the guest's write, no halt
    (every vCPU is already out, see kvm_trylock_all_vcpus) and a HW interrupt is left
    alone (vgic_hw_irq_change_active returns for uaccess); otherwise active is set
    (GICv2-model SGI: active_source 0) and the irq queued.
    vgic_mmio_uaccess_write_cactive -> __vgic_mmio_write_cactive: the same with active
    cleared, nothing queued. vgic_uaccess_write_cpending: clear the latch (a GICv2-model
    SGI loses all its sources), nothing queued, nothing physical (read in vgic-mmio.c at
    039aeb9deb92, the version stored here; 1c3b3cadcd69 was not readable).
    ENXIO: a register word beyond the VM's INTIDs (vgic_get_mmio_region).
    """
    if vcpu_id >= len(kvm.vcpus):
        return errno.EINVAL
    if intid >= 1020 or (intid // 32) * 32 >= _nr_irqs(kvm):
        return errno.ENXIO
    if not await kvm_trylock_all_vcpus(kvm):
        return errno.EBUSY
    vcpu = kvm.vcpus[vcpu_id]
    irq = kvm.vgic_get_irq(vcpu, intid)
    if irq is None:
        return errno.ENXIO
    v2_sgi = kvm.config.v2_model and is_sgi(intid)
    async with kvm.dist.config_lock:
        await irq.lock.acquire()
        kvm.coverage["uaccess.write"] += reg != "ISPENDR"
        if reg == "ISPENDR":
            if v2_sgi:
                irq.source |= 1 << vcpu_id
            irq.pending_latch = True
        elif reg == "ICPENDR":  # vgic_uaccess_write_cpending: a GICv2 SGI loses every source
            if v2_sgi:
                irq.source = 0
            irq.pending_latch = False
        elif not irq.hw:
            irq.active = reg == "ISACTIVER"
            if v2_sgi and irq.active:
                irq.active_source = 0
        if irq_should_queue(reg, irq.active):
            await vgic_queue_irq_unlock(kvm, irq)
        else:
            irq.lock.release()
    return 0


def irq_should_queue(reg: UaccessReg, active: bool) -> bool:
    """ISPENDR always queues, ICPENDR never; vgic_mmio_change_active queues only an
    active irq (a HW one stays as it was, so a userspace ICACTIVER may queue it)."""
    return reg == "ISPENDR" or (reg != "ICPENDR" and active)


# --- GSI routing and irqfds (irqchip.c, eventfd.c, vgic-irqfd.c) -----------------------


def _routes(routing: KvmIrqRouting, kvm: Kvm) -> dict[int, list[RoutingEntry]]:
    """The routing table; the default one (GSI n -> SPI 32+n, one per SPI) until the VMM
    sets its own (vgic-irqfd.c: kvm_vgic_setup_default_irq_routing, at vGIC init)."""
    if routing.routes is None:
        routing.routes = {n: [RoutingEntry(gsi=n, pin=n)] for n in range(kvm.dist.nr_spis)}
        routing.chip = {n: n for n in range(kvm.dist.nr_spis)}
    return routing.routes


async def kvm_set_gsi_routing(kvm: Kvm, entries: Sequence[RoutingEntry]) -> int:
    """KVM_SET_GSI_ROUTING. irqchip.c: kvm_set_irq_routing + setup_routing_entry, and
    vgic-irqfd.c: kvm_set_routing_entry. The new table replaces the old one whole.

    EINVAL: more than KVM_MAX_IRQ_ROUTES entries or a GSI beyond; flags other than
    KVM_MSI_VALID_DEVID on MSI routes (any on irqchip routes); an irqchip pin >=
    KVM_IRQCHIP_NUM_PINS (988: only this is checked, not nr_spis) or irqchip >= 1; a
    GSI routed twice to the irqchip, or an MSI GSI with any other route.
    Switch ``routing_pin_check`` off: the off-by-one pin bound (pin 988 accepted).
    """
    if len(entries) > KVM_MAX_IRQ_ROUTES:
        return errno.EINVAL
    routes: dict[int, list[RoutingEntry]] = {}
    chip: dict[int, int] = {}
    for ue in entries:
        if not 0 <= ue.gsi < KVM_MAX_IRQ_ROUTES:
            return errno.EINVAL
        if ue.type == "msi":
            if ue.flags & ~KVM_MSI_VALID_DEVID:
                return errno.EINVAL
        elif ue.flags:
            return errno.EINVAL
        for ei in routes.get(ue.gsi, []):
            if ei.type != "irqchip" or ue.type != "irqchip" or ue.irqchip == ei.irqchip:
                return errno.EINVAL
        if ue.type == "irqchip":
            pins = KVM_IRQCHIP_NUM_PINS + (0 if kvm.sw.routing_pin_check else 1)
            if not 0 <= ue.pin < pins or not 0 <= ue.irqchip < KVM_NR_IRQCHIPS:
                return errno.EINVAL
            chip[ue.pin] = ue.gsi
        routes.setdefault(ue.gsi, []).append(ue)
    await point("kvm_irq_routing_update")  # rcu_assign_pointer + synchronize_srcu
    kvm.irq_routing.routes, kvm.irq_routing.chip = routes, chip
    return 0


async def vgic_irqfd_set_irq(kvm: Kvm, e: RoutingEntry, level: bool) -> int:
    """vgic-irqfd.c: vgic_irqfd_set_irq: SPI 32 + pin, EINVAL if the VM lacks it."""
    spi = e.pin + SPI_MIN
    if not SPI_MIN <= spi < _nr_irqs(kvm):
        return errno.EINVAL
    return await _inject(kvm, None, spi, level)


async def kvm_set_msi(kvm: Kvm, e: RoutingEntry, level: bool) -> int:
    """vgic-irqfd.c: kvm_set_msi: ENODEV without an ITS; level 0 does nothing; else
    vgic_its_inject_msi(DeviceID, EventID)."""
    return await _kvm_set_msi(kvm, e.devid, e.data, level)


async def kvm_set_irq(kvm: Kvm, gsi: int, level: bool) -> int:
    """irqchip.c: kvm_set_irq: run every route of ``gsi`` (none: nothing, success).
    The routing table is read under SRCU: one point."""
    await point(f"kvm_set_irq.{gsi}")
    ret = 0
    for e in list(_routes(kvm.irq_routing, kvm).get(gsi, [])):
        if e.type == "irqchip":
            r = await vgic_irqfd_set_irq(kvm, e, level)
        else:
            r = await kvm_set_msi(kvm, e, level)
        ret = ret or r
    return ret


async def kvm_irqfd_assign(kvm: Kvm, eventfd: str, gsi: int,
                           resamplefd: str | None = None) -> int:
    """KVM_IRQFD (assign; ``resamplefd``: KVM_IRQFD_FLAG_RESAMPLE). eventfd.c:
    kvm_irqfd_assign. A resampling irqfd joins (or creates) the GSI's resampler, whose
    ack notifier is irqfd_resampler_ack. EBUSY: the eventfd already feeds an irqfd.
    A count already in the eventfd is injected at once (as if the write came now).
    """
    routing = kvm.irq_routing
    efd = routing.eventfd(eventfd)
    irqfd = Irqfd(gsi=gsi, eventfd=efd)
    if resamplefd is not None:
        irqfd.resamplefd = routing.eventfd(resamplefd)
        resampler = next((r for r in routing.resamplers if r.gsi == gsi), None)
        if resampler is None:
            resampler = IrqfdResampler(gsi=gsi)
            resampler.notifier = IrqAckNotifier(gsi, _resampler_ack(kvm, resampler))
            routing.resamplers.append(resampler)
            routing.ack_notifiers.append(resampler.notifier)
        irqfd.resampler = resampler
        resampler.irqfds.append(irqfd)
    await point(f"kvm_irqfd_assign.{eventfd}")  # irqfds.lock
    if any(other.eventfd is efd for other in routing.irqfds):
        if irqfd.resampler is not None:
            _resampler_shutdown(routing, irqfd)
        return errno.EBUSY
    routing.irqfds.append(irqfd)
    if efd.count:
        efd.count = 0
        await irqfd_inject(kvm, irqfd)
    return 0


async def kvm_irqfd_deassign(kvm: Kvm, eventfd: str, gsi: int) -> int:
    """KVM_IRQFD with KVM_IRQFD_FLAG_DEASSIGN. eventfd.c: kvm_irqfd_deassign + the
    shutdown work: unhook every irqfd of (eventfd, gsi); the last irqfd of a resampler
    unregisters its notifier and lowers the line (irqfd_resampler_shutdown)."""
    routing = kvm.irq_routing
    await point(f"kvm_irqfd_deassign.{eventfd}")
    for irqfd in [i for i in routing.irqfds if i.eventfd.name == eventfd and i.gsi == gsi]:
        routing.irqfds.remove(irqfd)
        if irqfd.resampler is not None and _resampler_shutdown(routing, irqfd):
            await kvm_set_irq(kvm, gsi, False)
    return 0


def _resampler_shutdown(routing: KvmIrqRouting, irqfd: Irqfd) -> bool:
    """eventfd.c: irqfd_resampler_shutdown's list work; True when the resampler died."""
    resampler = irqfd.resampler
    assert resampler is not None
    resampler.irqfds.remove(irqfd)
    if resampler.irqfds:
        return False
    routing.resamplers.remove(resampler)
    if resampler.notifier in routing.ack_notifiers:
        routing.ack_notifiers.remove(resampler.notifier)
    return True


def _resampler_ack(kvm: Kvm, resampler: IrqfdResampler) -> Callable[[], Awaitable[None]]:
    async def irqfd_resampler_ack() -> None:
        """eventfd.c: irqfd_resampler_ack: lower the GSI once (the resample source), then
        signal every resamplefd of the resampler; the device re-asserts if still needed."""
        if _logging():
            _log(IrqfdResampled, gsi=resampler.gsi)
        await kvm_set_irq(kvm, resampler.gsi, False)
        for irqfd in list(resampler.irqfds):
            if irqfd.resamplefd is not None:
                await irqfd.resamplefd.eventfd_signal()

    return irqfd_resampler_ack


async def irqfd_inject(kvm: Kvm, irqfd: Irqfd) -> None:
    """eventfd.c: irqfd_inject, the irqfd's work item, on a kworker (task context):
    kvm_set_irq level 1 then 0, or level 1 only for a resampling irqfd."""
    await kvm_set_irq(kvm, irqfd.gsi, True)
    if irqfd.resampler is None:
        await kvm_set_irq(kvm, irqfd.gsi, False)


async def irqfd_wakeup(kvm: Kvm, irqfd: Irqfd) -> None:
    """eventfd.c: irqfd_wakeup (EPOLLIN), in the signaller's context under the eventfd's
    wqh lock with IRQs off: kvm_arch_set_irq_inatomic (vgic-irqfd.c), else
    schedule_work(&irqfd->inject).

    Switch ``irqfd_spi_inatomic`` (default): an irqchip route is injected right here,
    level 1 only (also for resampling irqfds): an edge SPI latches; a level SPI's line
    stays high until the VMM lowers it or, for a resampling irqfd, the guest's EOI runs
    the resampler ("Injecting SPIs is always possible in atomic context", as posted on
    the kvm list); without it (vgic-irqfd.c as stored at 4b3c1f1b15f5, which injects
    only cached MSI translations in atomic context) the route goes to the kworker too.
    Other routes (MSI: no translation cache modelled) always go to the kworker.
    """
    await point(f"irqfd_wakeup.{irqfd.eventfd.name}")  # srcu read of the irq entry
    entries = _routes(kvm.irq_routing, kvm).get(irqfd.gsi, [])
    # Fix F4 (fix_inatomic_no_bcst): -EWOULDBLOCK when the injection may broadcast.
    defer = kvm.sw.fix_inatomic_no_bcst and vgic_model_needs_bcst_kick(kvm)
    if (kvm.sw.irqfd_spi_inatomic and not defer and len(entries) == 1
            and entries[0].type == "irqchip"):
        await vgic_irqfd_set_irq(kvm, entries[0], True)
        return

    async def work(irqfd: Irqfd = irqfd) -> None:
        await irqfd_inject(kvm, irqfd)

    kvm.system_wq.schedule_work(f"irqfd.{irqfd.eventfd.name}.inject", work,
                                src=current_actor().name)


async def eventfd_write(kvm: Kvm, eventfd: str, *, from_hardirq: bool = False) -> int:
    """write(2) of 1 to eventfd ``eventfd`` (how a device raises its irqfd), or, with
    ``from_hardirq``, eventfd_signal from a device's interrupt handler (VFIO INTx:
    vfio_intx_handler; vfio-platform: vfio_irq_handler), in hard-IRQ context.

    Under the eventfd's wqh lock (IRQs off) the count goes up and the irqfd hooked on it
    is woken (irqfd_wakeup); with none hooked, the count waits for a later KVM_IRQFD."""
    if from_hardirq:
        with hardirq("vfio_intx_handler"):
            return await eventfd_write(kvm, eventfd)
    routing = kvm.irq_routing
    efd = routing.eventfd(eventfd)
    async with efd.wqh_lock:
        irqfd = next((i for i in routing.irqfds if i.eventfd is efd), None)
        efd.signals += 1
        if irqfd is None:
            efd.count += 1
        else:
            await irqfd_wakeup(kvm, irqfd)
    return 0


# --- MSIs (KVM_SIGNAL_MSI and MSI routes) ---------------------------------------------


async def _kvm_set_msi(kvm: Kvm, devid: int, eventid: int, level: bool) -> int:
    """vgic-irqfd.c: kvm_set_msi as an errno: ENODEV without an ITS (GICv2 model), level 0
    ignored, else vgic_its_inject_msi (its.py); a blocked MSI is not an error here."""
    if kvm.config.v2_model:
        return errno.ENODEV
    if not level:
        return 0
    ret = await vgic_its_inject_msi(kvm, devid, eventid)
    return -ret if ret < 0 else 0


async def kvm_send_userspace_msi(kvm: Kvm, devid: int, eventid: int,
                                 flags: int = KVM_MSI_VALID_DEVID) -> int:
    """KVM_SIGNAL_MSI. kvm_main.c: kvm_send_userspace_msi -> kvm_set_msi ->
    vgic-its.c: vgic_its_inject_msi (its.py).

    Unlike the other entry points this returns the ioctl's own value: 1 delivered to a
    valid translation, 0 blocked by the guest's ITS mapping, or a *negative* errno
    (EINVAL: flags beyond KVM_MSI_VALID_DEVID, or no DeviceID given (vgic_msi_to_its);
    ENODEV: no ITS).
    """
    if flags & ~KVM_MSI_VALID_DEVID:
        return -errno.EINVAL
    if kvm.config.v2_model:
        return -errno.ENODEV
    if not flags & KVM_MSI_VALID_DEVID:
        return -errno.EINVAL
    return await vgic_its_inject_msi(kvm, devid, eventid)


# --- the VMM's requests as messages ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class VmIoctl:
    """A VMM ioctl in flight to the distributor actor, which answers with ``call`` for
    the VMM's thread to run (distributor.py: kvm_io_bus_access); ``call`` returns the
    errno."""

    name: str
    call: Callable[[Kvm], Awaitable[int]]
