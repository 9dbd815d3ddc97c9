"""GICD configuration registers: ICFGR, IGROUPR, IROUTER (GICv3), ITARGETSR (GICv2).

Direct tests drive ``vgic_mmio_access`` from one test actor (no guest running); the
end-to-end tests retarget a queued SPI from a guest and let prune's migration deliver it.
"""

from vgic_actors.arch import GicVersion
from vgic_actors.guest import Ack, Eoir, GuestProgram, Mmio, SetGroupEnable, SetPmr, Store, WaitFor
from vgic_actors.kvm.distributor import vgic_mmio_access
from vgic_actors.kvm.guest_api import MmioAccess
from vgic_actors.kvm.irq import IrqConfig
from vgic_actors.kvm.vgic import kvm_vgic_inject_irq, vgic_prune_ap_list
from vgic_actors.kvm.vm import KVM_REQ_IRQ_PENDING, VmConfig
from vgic_actors.runtime import Outcome

from .scenarios import run_scenario
from .test_vgic_paths import drive, enable, pending_reqs


def mmio(kvm, reg, intid, value=None, vcpu=0):
    """One guest access from ``vcpu``: a write when ``value`` is given, else a read."""
    write = value is not None
    return vgic_mmio_access(kvm, MmioAccess(vcpu, reg, intid, write, value or 0))


def test_icfgr_spis_follow_the_edge_bit_and_private_irqs_are_read_only():
    """vgic_mmio_write_config: SGIs stay edge, PPIs stay level, an SPI takes the written bit."""
    reads = []

    async def body(kvm):
        await mmio(kvm, "ICFGR", 3, 0)  # SGI: ignored
        await mmio(kvm, "ICFGR", 20, 1)  # PPI: ignored
        await mmio(kvm, "ICFGR", 40, 0)  # SPI -> level
        reads.extend([await mmio(kvm, "ICFGR", i) for i in (3, 20, 40, 41)])

    kvm = drive(VmConfig(), body)
    assert reads == [1, 0, 0, 1]
    assert kvm.vcpus[0].private_irqs[3].config is IrqConfig.EDGE
    assert kvm.vcpus[0].private_irqs[20].config is IrqConfig.LEVEL
    assert kvm.dist.spis[8].config is IrqConfig.LEVEL


def test_icfgr_change_of_a_pending_spi_changes_nothing_else():
    """A config change leaves the latch and the ap_list alone (no re-queue, no kick)."""
    async def body(kvm):
        enable(kvm, 32)
        await kvm_vgic_inject_irq(kvm, None, 32, True)
        for vcpu in kvm.vcpus:
            vcpu.core.requests.bits = 0
        await mmio(kvm, "ICFGR", 32, 0)

    kvm = drive(VmConfig(), body)
    irq = kvm.dist.spis[0]
    assert irq.config is IrqConfig.LEVEL and irq.pending_latch and irq.vcpu == 0
    assert pending_reqs(kvm) == [0, 0]


def test_igroupr_sets_the_group_and_kicks_the_owner_of_a_queued_irq():
    """vgic_mmio_write_group queues: the vCPU holding the SPI gets IRQ_PENDING again."""
    reads = []

    async def body(kvm):
        enable(kvm, 33)
        await kvm_vgic_inject_irq(kvm, None, 33, True)
        for vcpu in kvm.vcpus:
            vcpu.core.requests.bits = 0
        await mmio(kvm, "IGROUPR", 33, 0)
        reads.append(await mmio(kvm, "IGROUPR", 33))
        await mmio(kvm, "IGROUPR", 5, 0, vcpu=1)  # GICR_IGROUPR0 of vCPU1
        reads.append(await mmio(kvm, "IGROUPR", 5, vcpu=1))

    kvm = drive(VmConfig(), body)
    assert reads == [0, 0] and kvm.dist.spis[1].group == 0
    assert kvm.vcpus[1].private_irqs[5].group == 0 and kvm.vcpus[0].private_irqs[5].group == 1
    assert pending_reqs(kvm) == [1 << KVM_REQ_IRQ_PENDING, 0]


def test_irouter_targets_the_vcpu_with_that_mpidr_and_keeps_only_aff2_to_aff0():
    """vgic_mmio_write_irouter: IRM and Aff3 dropped; an MPIDR naming no vCPU leaves no target;
    private interrupts have no IROUTER (RAZ/WI)."""
    reads = []

    async def body(kvm):
        await mmio(kvm, "IROUTER", 34, (1 << 31) | 2)  # IRM=1, Aff0=2
        reads.append(await mmio(kvm, "IROUTER", 34))
        await mmio(kvm, "IROUTER", 35, 0x100)  # Aff1=1: no such vCPU
        await mmio(kvm, "IROUTER", 20, 1)
        reads.append(await mmio(kvm, "IROUTER", 20))

    kvm = drive(VmConfig(nr_vcpus=3), body)
    assert kvm.dist.spis[2].target_vcpu == 2 and kvm.dist.spis[2].mpidr == 2
    assert kvm.dist.spis[3].target_vcpu is None
    assert reads == [2, 0]


def test_itargetsr_v2_targets_the_lowest_set_bit_of_the_implemented_cpus():
    """vgic_mmio_write_target: mask with the online vCPUs, target = lowest set bit (vCPU0 if
    none); ITARGETSR0-7 read as the vCPU's own bit."""
    reads = []

    async def body(kvm):
        await mmio(kvm, "ITARGETSR", 32, 0b1110_0110)
        reads.append(await mmio(kvm, "ITARGETSR", 32))
        await mmio(kvm, "ITARGETSR", 33, 0b1000_0000)  # vCPU7 does not exist
        reads.append(await mmio(kvm, "ITARGETSR", 33))
        reads.append(await mmio(kvm, "ITARGETSR", 5, vcpu=2))
        await mmio(kvm, "ITARGETSR", 5, 1, vcpu=2)  # read-only
        reads.append(await mmio(kvm, "IROUTER", 32))  # no IROUTER on GICv2

    kvm = drive(VmConfig(nr_vcpus=3, gic_model=GicVersion.V2), body)
    assert reads == [0b110, 0, 0b100, 0]
    assert kvm.dist.spis[0].target_vcpu == 1 and kvm.dist.spis[1].target_vcpu == 0


def test_retargeting_a_queued_spi_kicks_nobody_and_prune_migrates_it():
    """The IROUTER write only changes target_vcpu; the owner's next prune moves the SPI."""
    async def body(kvm):
        enable(kvm, 32)
        await kvm_vgic_inject_irq(kvm, None, 32, True)
        for vcpu in kvm.vcpus:
            vcpu.core.requests.bits = 0
        await mmio(kvm, "IROUTER", 32, 1)
        assert pending_reqs(kvm) == [0, 0] and kvm.dist.spis[0].vcpu == 0
        await vgic_prune_ap_list(kvm, kvm.vcpus[0])

    kvm = drive(VmConfig(), body)
    assert kvm.dist.spis[0].vcpu == 1 and [i.intid for i in kvm.vcpus[1].ap_list] == [32]
    assert pending_reqs(kvm) == [0, 1 << KVM_REQ_IRQ_PENDING]


def retarget_guests(reg: str, value: int) -> list[GuestProgram]:
    """vCPU0 masks everything (PMR 0), makes SPI 32 pending (queued on its own ap_list),
    then retargets it to vCPU1 and ends; vCPU1 must receive it through prune's migration."""
    vcpu0 = GuestProgram("vcpu0", [
        SetGroupEnable(), SetPmr(0),
        Mmio("ISENABLER", 32), Mmio("ISPENDR", 32),
        Mmio(reg, 32, value=value), Store("moved", 1),
    ])
    vcpu1 = GuestProgram("vcpu1", [
        SetGroupEnable(), SetPmr(0xF8), WaitFor("moved", 1), Ack(expect=32), Eoir(32),
        Mmio("ISACTIVER", 32, write=False, expect=0),
    ])
    return [vcpu0, vcpu1]


def test_retargeted_queued_spi_reaches_the_new_target_under_pct():
    """End to end, GICv3 IROUTER and GICv2 ITARGETSR: every PCT schedule delivers SPI 32 to
    vCPU1 once, and vCPU0 never acknowledges it."""
    cases = [(VmConfig(), "IROUTER", 1), (VmConfig(gic_model=GicVersion.V2), "ITARGETSR", 0b10)]
    for config, reg, value in cases:
        for seed in range(30):
            out = run_scenario(config, retarget_guests(reg, value), seed=seed, k=200)
            assert out.result.outcome is Outcome.QUIESCENT, (reg, seed, out.result.finding)
            assert out.failures == [], (reg, seed)
            guests = out.machine.guests
            assert guests[0].acked == [] and guests[1].acked == [32], (reg, seed)
            assert out.machine.kvm.dist.spis[0].vcpu is None
