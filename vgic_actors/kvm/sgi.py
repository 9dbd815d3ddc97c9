"""Software-generated interrupts: GICv3 ICC_SGI*R traps and the GICv2 GICD_SGIR family.

vgic-mmio-v3.c (vgic_v3_dispatch_sgi, vgic_v3_queue_sgi), sys_regs.c (access_gic_sgi),
vgic-mmio-v2.c (vgic_mmio_write_sgir, vgic_mmio_read_sgipend, vgic_mmio_write_sgipendc,
vgic_mmio_write_sgipends), sys_regs.c reset_mpidr / kvm_mpidr_to_vcpu for affinity.

GICv3: the write traps on the *sending* vCPU and is handled in its thread (handle_exit,
after the exit's sync), taking only each target SGI's irq_lock and then, through
vgic_queue_irq_unlock, the target's ap_list_lock: no config_lock, no distributor actor.
GICv2: GICD_SGIR is distributor MMIO, served by the distributor actor like the other
GICD registers; each target's copy of the SGI records the sender in ``source``.
"""

from __future__ import annotations

from vgic_actors.arch.sgi import Sgi1r, SgiRegister, SgiTrap
from vgic_actors.kvm.vgic import vgic_queue_irq_unlock
from vgic_actors.kvm.vm import Kvm, KvmVcpu
from vgic_actors.runtime import point

# --- affinity -----------------------------------------------------------------------------


def kvm_vcpu_get_mpidr_aff(vcpu_id: int) -> int:
    """sys_regs.c: reset_mpidr. Aff0 = vcpu_id[3:0], Aff1 = vcpu_id[11:4], Aff2 =
    vcpu_id[19:12] (16 vCPUs per Aff0 cluster, matching a GICv3 SGI TargetList)."""
    return (vcpu_id & 0xF) | ((vcpu_id >> 4) & 0xFF) << 8 | ((vcpu_id >> 12) & 0xFF) << 16


def kvm_mpidr_to_vcpu(kvm: Kvm, mpidr: int) -> int | None:
    """arm.c: kvm_mpidr_to_vcpu. The vCPU whose MPIDR affinity is ``mpidr``, or None."""
    mpidr &= 0xFFFFFF
    for vcpu in kvm.vcpus:
        if kvm_vcpu_get_mpidr_aff(vcpu.vcpu_id) == mpidr:
            return vcpu.vcpu_id
    return None


# --- GICv3: ICC_SGI1R_EL1 and friends --------------------------------------------------------


def access_gic_sgi_group1(trap: SgiTrap) -> bool:
    """sys_regs.c: access_gic_sgi. With GICD_CTLR.DS=1, ICC_SGI1R_EL1 may generate either
    group (allow_group1); ICC_SGI0R_EL1 and ICC_ASGI1R_EL1 only Group 0."""
    return trap.register is SgiRegister.SGI1R


async def vgic_v3_queue_sgi(kvm: Kvm, vcpu: KvmVcpu, sgi: int, allow_group1: bool) -> None:
    """vgic-mmio-v3.c: vgic_v3_queue_sgi. Make ``vcpu``'s copy of ``sgi`` pending and queue
    it, unless it is a Group 1 SGI and the register only generates Group 0."""
    irq = vcpu.private_irqs[sgi]
    await irq.lock.acquire()
    if irq.group and not allow_group1:
        irq.lock.release()
        return
    irq.pending_latch = True
    await vgic_queue_irq_unlock(kvm, irq)


async def vgic_v3_dispatch_sgi(kvm: Kvm, vcpu: KvmVcpu, reg: int, allow_group1: bool) -> None:
    """vgic-mmio-v3.c: vgic_v3_dispatch_sgi, on the sending vCPU's thread.

    IRM=1: every vCPU but the sender, in vcpu_id order. Otherwise each TargetList bit
    names the vCPU with MPIDR Aff3.Aff2.Aff1 of the register and Aff0 = the bit number;
    bits naming no vCPU are ignored. Kernel as merged: the RS field is not decoded (a
    target list with RS != 0 is read as RS = 0; KVM's MPIDRs keep Aff0 below 16).
    """
    fields = Sgi1r.decode(reg)
    if fields.irm:
        for target in kvm.vcpus:
            if target is not vcpu:
                await vgic_v3_queue_sgi(kvm, target, fields.intid, allow_group1)
        return
    mpidr = fields.aff2 << 16 | fields.aff1 << 8  # Aff3 is not part of KVM's MPIDRs
    for aff0 in range(16):
        if not fields.target_list >> aff0 & 1:
            continue
        target_id = kvm_mpidr_to_vcpu(kvm, mpidr | aff0)
        if target_id is not None:
            await vgic_v3_queue_sgi(kvm, kvm.vcpus[target_id], fields.intid, allow_group1)


# --- GICv2: GICD_SGIR, GICD_SPENDSGIR, GICD_CPENDSGIR ----------------------------------------


async def vgic_mmio_write_sgir(kvm: Kvm, source: KvmVcpu, val: int) -> None:
    """vgic-mmio-v2.c: vgic_mmio_write_sgir. TargetListFilter 0: the CPUTargetList; 1: all
    but the sender; 2: the sender only; 3: reserved (ignored). Each target's copy of the
    SGI latches pending with the sender's bit in ``source``, then is queued."""
    intid = val & 0xF
    targets = (val >> 16) & 0xFF
    mode = (val >> 24) & 0x3
    if mode == 1:
        targets = ((1 << len(kvm.vcpus)) - 1) & ~(1 << source.vcpu_id)
    elif mode == 2:
        targets = 1 << source.vcpu_id
    elif mode == 3:
        return
    for vcpu in kvm.vcpus:
        if not targets >> vcpu.vcpu_id & 1:
            continue
        irq = vcpu.private_irqs[intid]
        await irq.lock.acquire()
        irq.pending_latch = True
        irq.source |= 1 << source.vcpu_id
        await vgic_queue_irq_unlock(kvm, irq)


async def vgic_mmio_read_sgipend(vcpu: KvmVcpu, intid: int) -> int:
    """vgic-mmio-v2.c: vgic_mmio_read_sgipend. The SGI's pending-source byte (read without
    the irq_lock: a point)."""
    await point(f"sgipend.vcpu{vcpu.vcpu_id}.{intid}")
    return vcpu.private_irqs[intid].source


async def vgic_mmio_write_sgipend(kvm: Kvm, vcpu: KvmVcpu, intid: int, val: int,
                                  set_pending: bool) -> None:
    """vgic-mmio-v2.c: vgic_mmio_write_sgipends (set: add sources, queue if any) and
    vgic_mmio_write_sgipendc (clear: drop sources, unlatch when none remain)."""
    irq = vcpu.private_irqs[intid]
    await irq.lock.acquire()
    if set_pending:
        irq.source |= val & 0xFF
        if irq.source:
            irq.pending_latch = True
            await vgic_queue_irq_unlock(kvm, irq)
            return
    else:
        irq.source &= ~(val & 0xFF)
        if not irq.source:
            irq.pending_latch = False
    irq.lock.release()
