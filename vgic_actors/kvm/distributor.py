"""The distributor actor and the GICD_* handlers (vgic-mmio.c), run where the kernel runs them.

A vCPU whose guest touches the distributor exits with an ``MmioAccess``; its run loop
sends it to the distributor actor as a request (a message in flight, over the actor's
Trio memory channel) and waits for the reply. The distributor is the io bus
(kvm_io_bus_write / kvm_io_bus_read finding the vgic_io_device of the address): its
reply is the `Emulation` to run, and the requester runs it **on its own thread**, in
its own context (task context, in handle_exit, as io_mem_abort does). So two vCPUs'
accesses, and VMM ioctls (which come the same way from their own threads), run
concurrently and interleave only at the kernel's locks (irq_lock, ap_list_lock,
config_lock), as in the kernel. Handlers work one interrupt's bit (or field) at a
time. The same path serves the ITS's GITS_CWRITER writes (one command each,
``its.py``) and the GICv2 SGI registers (``sgi.py``); GICv3 SGIs never come here
(trapped ICC_SGI1R_EL1 writes are handled in the sender's run loop).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial

from vgic_actors.arch.intid import SPI_MIN, is_sgi
from vgic_actors.kvm.guest_api import ItsCommandWrite, MmioAccess
from vgic_actors.kvm.irq import IrqConfig, VgicIrq, irq_is_pending
from vgic_actors.kvm.its import vgic_mmio_write_its_cwriter
from vgic_actors.kvm.sgi import (
    kvm_mpidr_to_vcpu,
    vgic_mmio_read_sgipend,
    vgic_mmio_write_sgipend,
    vgic_mmio_write_sgir,
)
from vgic_actors.kvm.userspace import VmIoctl
from vgic_actors.kvm.vgic import (
    vgic_mmio_change_active,
    vgic_mmio_read_active,
    vgic_queue_irq_unlock,
)
from vgic_actors.kvm.vm import Kvm, KvmVcpu
from vgic_actors.runtime import Mailbox, Message, point


async def vgic_mmio_access(kvm: Kvm, access: MmioAccess) -> int:
    """Dispatch one GICD_* access (vgic-mmio.c handlers); returns the bit read (0 for writes)."""
    vcpu = kvm.vcpus[access.vcpu_id]
    irq = kvm.vgic_get_irq(vcpu, access.intid)
    if irq is None:
        return 0
    reg = access.reg
    if reg in ("ISACTIVER", "ICACTIVER"):
        if not access.write:
            return int(await vgic_mmio_read_active(kvm, vcpu, access.intid))
        kvm.coverage["mmio.sactive"] += reg == "ISACTIVER"
        await vgic_mmio_change_active(kvm, vcpu, access.intid, reg == "ISACTIVER")
        return 0
    if reg in _FIELD_REGS:
        return await vgic_mmio_field_access(kvm, vcpu, irq, access)
    if reg in ("ISPENDR", "ICPENDR") and access.write and kvm.config.v2_model and is_sgi(
            irq.intid):
        return 0  # vgic_mmio_write_s/cpending: GICD_I[SC]PENDR0 SGI bits are WI on GICv2
    await irq.lock.acquire()
    if reg == "IPRIORITYR":  # vgic_mmio_read/write_priority: VGIC_PRI_BITS (5) kept
        if access.write:
            irq.priority = access.value & 0xF8
        value = irq.priority
        irq.lock.release()
        return value if not access.write else 0
    if not access.write:
        if reg in ("ISPENDR", "ICPENDR") and irq.hw and irq.config is IrqConfig.LEVEL:
            # __read_pending: a guest read of a mapped level interrupt reports the
            # physical line (vgic_get_phys_line_level: irq_get_irqchip_state PENDING)
            value = int(kvm.phys.line_level(irq.hwintid))
        elif reg in ("ISPENDR", "ICPENDR"):
            value = int(irq_is_pending(irq))
        else:
            value = int(irq.enabled)
        irq.lock.release()
        return value
    if reg == "ISPENDR":  # vgic_mmio_write_spending
        irq.pending_latch = True
        await vgic_queue_irq_unlock(kvm, irq)
    elif reg == "ICPENDR":  # vgic_mmio_write_cpending
        kvm.coverage["mmio.cpending-queued"] += irq.vcpu is not None
        irq.pending_latch = False
        irq.lock.release()
    elif reg == "ISENABLER":  # vgic_mmio_write_senable
        irq.enabled = True
        await vgic_queue_irq_unlock(kvm, irq)
    else:  # ICENABLER: vgic_mmio_write_cenable
        irq.enabled = False
        irq.lock.release()
    return 0


_FIELD_REGS = frozenset({"ICFGR", "IGROUPR", "IROUTER", "ITARGETSR", "SGIR", "SPENDSGIR",
                         "CPENDSGIR"})


async def vgic_mmio_field_access(kvm: Kvm, vcpu: KvmVcpu, irq: VgicIrq,
                                 access: MmioAccess) -> int:
    """The configuration and SGI registers, one interrupt's field at a time.

    A register the VM's GIC model lacks (IROUTER on GICv2; ITARGETSR, SGIR and the
    SGI pending registers on GICv3) reads as zero and ignores writes, as an unmapped
    region does (dispatch_mmio_read/write). Reads the kernel makes without the
    irq_lock are one point each.
    """
    reg, v2 = access.reg, kvm.config.v2_model
    if reg in ("ITARGETSR", "SGIR", "SPENDSGIR", "CPENDSGIR") and not v2:
        return 0
    if reg == "IROUTER" and (v2 or irq.intid < SPI_MIN):
        return 0  # vgic_mmio_read/write_irouter: GICD_IROUTER<n> exists for SPIs only
    if reg == "SGIR":
        if access.write:
            await vgic_mmio_write_sgir(kvm, vcpu, access.value)
        return 0  # vgic_mmio_read_raz
    if reg in ("SPENDSGIR", "CPENDSGIR"):
        if not is_sgi(irq.intid):
            return 0
        if not access.write:
            return await vgic_mmio_read_sgipend(vcpu, irq.intid)
        await vgic_mmio_write_sgipend(kvm, vcpu, irq.intid, access.value, reg == "SPENDSGIR")
        return 0
    if not access.write:
        await point(f"mmio.read.{reg}.{irq.intid}")
        if reg == "ICFGR":  # vgic_mmio_read_config: Int_config[1] = edge
            return int(irq.config is IrqConfig.EDGE)
        if reg == "IGROUPR":  # vgic_mmio_read_group
            return irq.group
        if reg == "IROUTER":  # vgic_mmio_read_irouter: the stored affinity
            return irq.mpidr
        # vgic_mmio_read_target: private interrupts target their own vCPU only
        return 1 << vcpu.vcpu_id if irq.intid < SPI_MIN else irq.targets
    if reg == "ICFGR":
        await vgic_mmio_write_config(irq, access.value)
    elif reg == "IGROUPR":
        await vgic_mmio_write_group(kvm, irq, access.value)
    elif reg == "IROUTER":
        await vgic_mmio_write_irouter(kvm, irq, access.value)
    else:
        await vgic_mmio_write_target(kvm, irq, access.value)
    return 0


async def vgic_mmio_write_config(irq: VgicIrq, edge: int) -> None:
    """vgic-mmio.c: vgic_mmio_write_config. SGIs and PPIs are read-only (SGIs always edge;
    PPIs keep KVM's level default, which the arch timer relies on); an SPI becomes edge
    when Int_config[1] is set, level otherwise. Nothing else happens: no re-queue, no
    change to the latch or the line, whatever state the interrupt is in."""
    if irq.intid < SPI_MIN:
        return
    async with irq.lock:
        irq.config = IrqConfig.EDGE if edge & 1 else IrqConfig.LEVEL


async def vgic_mmio_write_group(kvm: Kvm, irq: VgicIrq, group: int) -> None:
    """vgic-mmio.c: vgic_mmio_write_group. Set the group, then vgic_queue_irq_unlock (a
    queued interrupt's owner is kicked to re-evaluate it)."""
    await irq.lock.acquire()
    irq.group = group & 1
    await vgic_queue_irq_unlock(kvm, irq)


async def vgic_mmio_write_irouter(kvm: Kvm, irq: VgicIrq, mpidr: int) -> None:
    """vgic-mmio-v3.c: vgic_mmio_write_irouter. Keep Aff2.Aff1.Aff0 (Aff3 and the
    Interrupt_Routing_Mode bit are dropped: no 1-of-N) and retarget to the vCPU with that
    MPIDR (None if there is none). Nothing more: an interrupt already on an ap_list moves
    only when its current owner next prunes (vgic_prune_ap_list's migration), no kick."""
    async with irq.lock:
        irq.mpidr = mpidr & 0xFFFFFF
        irq.target_vcpu = kvm_mpidr_to_vcpu(kvm, irq.mpidr)


async def vgic_mmio_write_target(kvm: Kvm, irq: VgicIrq, targets: int) -> None:
    """vgic-mmio-v2.c: vgic_mmio_write_target. ITARGETSR0-7 (private) are read-only; an
    SPI keeps the mask of existing vCPUs and targets its lowest set bit (vCPU0 when
    empty). As for IROUTER, no kick: migration is left to prune."""
    if irq.intid < SPI_MIN:
        return
    cpu_mask = (1 << len(kvm.vcpus)) - 1
    async with irq.lock:
        irq.targets = targets & cpu_mask
        irq.target_vcpu = (irq.targets & -irq.targets).bit_length() - 1 if irq.targets else 0


@dataclass(frozen=True, slots=True)
class Emulation:
    """The distributor's reply to a request: the handler its requester runs itself."""

    kind: str
    run: Callable[[], Awaitable[object]]


def distributor_handler(kvm: Kvm) -> Callable[[Message], Awaitable[object]]:
    """The handler the runtime's ``serve`` shell calls for each message: find the
    device of the access (kvm_io_bus_get_dev) and answer with its `Emulation`."""

    async def handle(msg: Message) -> object:
        payload = msg.payload
        if isinstance(payload, MmioAccess):
            return Emulation(msg.kind, partial(vgic_mmio_access, kvm, payload))
        if isinstance(payload, ItsCommandWrite):
            return Emulation(msg.kind, partial(vgic_mmio_write_its_cwriter, kvm, payload))
        if isinstance(payload, VmIoctl):  # a VMM/device ioctl (userspace.py)
            return Emulation(msg.kind, partial(payload.call, kvm))
        raise TypeError(f"distributor: unexpected message {msg.describe()}")

    return handle


async def kvm_io_bus_access(distributor: Mailbox, payload: object, *, kind: str) -> object:
    """kvm_main.c: kvm_io_bus_write / kvm_io_bus_read from the caller's thread: ask the
    distributor actor for the access's handler, then run it here, in the caller's
    context, concurrently with every other CPU's accesses."""
    reply = await distributor.request(payload, kind=kind)
    if isinstance(reply, Emulation):
        return await reply.run()
    return reply
