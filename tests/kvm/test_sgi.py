"""SGIs: GICv3 ICC_SGI1R_EL1 (trapped, dispatched on the sender's thread) and GICv2 GICD_SGIR
(per-source pending state presented one source at a time), peer-tests.md B1."""

import pytest

from vgic_actors.arch import GicVersion
from vgic_actors.arch.sgi import Sgi1r
from vgic_actors.guest import Ack, Eoir, GuestProgram, SendSgi, SetGroupEnable, SetPmr
from vgic_actors.kvm.distributor import vgic_mmio_access
from vgic_actors.kvm.guest_api import MmioAccess
from vgic_actors.kvm.sgi import kvm_mpidr_to_vcpu, kvm_vcpu_get_mpidr_aff, vgic_v3_dispatch_sgi
from vgic_actors.kvm.vm import VmConfig
from vgic_actors.runtime import Outcome

from .scenarios import run_scenario
from .test_vgic_paths import drive

SETUP = [SetGroupEnable(), SetPmr(0xF8)]


def pending_sgis(kvm, sgi):
    return [v.private_irqs[sgi].pending_latch for v in kvm.vcpus]


def test_mpidr_mapping_follows_reset_mpidr():
    """vCPU n: Aff0 = n % 16, Aff1 = n // 16; kvm_mpidr_to_vcpu inverts it."""
    assert [kvm_vcpu_get_mpidr_aff(n) for n in (0, 5, 15, 16, 17)] == [0, 5, 15, 0x100, 0x101]

    async def body(kvm):
        pass

    kvm = drive(VmConfig(nr_vcpus=18), body)
    assert kvm_mpidr_to_vcpu(kvm, 0x101) == 17 and kvm_mpidr_to_vcpu(kvm, 0x102) is None


def test_dispatch_decodes_target_list_affinity_and_irm():
    """vgic_v3_dispatch_sgi: TargetList bits name Aff0 within Aff1 (bits naming no vCPU are
    ignored; RS is not decoded); IRM = every vCPU but the sender."""
    async def body(kvm):
        sender = kvm.vcpus[1]
        await vgic_v3_dispatch_sgi(kvm, sender, Sgi1r(1, target_list=0b1_0000_0101).encode(),
                                   True)
        await vgic_v3_dispatch_sgi(kvm, sender, Sgi1r(2, 0b10, aff1=1).encode(), True)
        await vgic_v3_dispatch_sgi(kvm, sender, Sgi1r(3, 0b10, rs=1).encode(), True)
        await vgic_v3_dispatch_sgi(kvm, sender, Sgi1r(4, 0, irm=True).encode(), True)

    kvm = drive(VmConfig(nr_vcpus=18), body)
    pend1 = pending_sgis(kvm, 1)
    assert [n for n, p in enumerate(pend1) if p] == [0, 2, 8]
    assert [n for n, p in enumerate(pending_sgis(kvm, 2)) if p] == [17]
    assert [n for n, p in enumerate(pending_sgis(kvm, 3)) if p] == [1]  # RS ignored
    assert [n for n, p in enumerate(pending_sgis(kvm, 4)) if p] == [n for n in range(18) if n != 1]
    assert [i.intid for i in kvm.vcpus[17].ap_list] == [2, 4]


def test_group0_only_register_does_not_generate_a_group1_sgi():
    """vgic_v3_queue_sgi: an ICC_SGI0R/ASGI1R write (allow_group1 false) skips Group 1 SGIs."""
    async def body(kvm):
        await vgic_v3_dispatch_sgi(kvm, kvm.vcpus[0], Sgi1r(1, 0b10).encode(), False)

    kvm = drive(VmConfig(), body)
    assert pending_sgis(kvm, 1) == [False, False]


def b1_guests(nr: int, sender: int, sgi: int, targets: tuple[int, ...], irm: bool):
    """kvm-unit-tests ipi_test (B1): the sender sends one SGI; each target acks it once."""
    receivers = [n for n in range(nr) if n != sender] if irm else list(targets)
    guests = []
    for n in range(nr):
        ops = list(SETUP)
        if n == sender:
            ops.append(SendSgi(sgi, targets, irm))
        if n in receivers:
            ops += [Ack(expect=sgi), Eoir()]
        guests.append(GuestProgram(f"vcpu{n}", ops))
    return guests, receivers


@pytest.mark.parametrize(("targets", "irm"), [((0, 2), False), ((), True), ((1,), False)])
def test_gicv3_sgi_reaches_exactly_its_targets_under_pct(targets, irm):
    """B1 on GICv3: target list (other parity), broadcast (IRM) and self-IPI; every target
    acknowledges SGI 1 exactly once, nobody else sees it, for 25 PCT seeds each."""
    for seed in range(25):
        guests, receivers = b1_guests(4, 1, 1, targets, irm)
        out = run_scenario(VmConfig(nr_vcpus=4), guests, seed=seed, k=300)
        assert out.result.outcome is Outcome.QUIESCENT, (seed, out.result.finding)
        assert out.failures == [], seed
        acked = {n: g.acked for n, g in enumerate(out.machine.guests)}
        assert acked == {n: [1] if n in receivers else [] for n in range(4)}, seed


def test_gicv2_sgis_from_two_sources_are_acked_once_per_source():
    """GICD_SGIR from vCPU0 and vCPU1 to vCPU2: two pending sources, presented one at a time
    (LR CPUID = lowest source, EOI bit while another remains); IAR carries the source in
    [12:10] and vCPU2 acknowledges SGI 3 once per source."""
    config = VmConfig(nr_vcpus=3, gic_model=GicVersion.V2)
    for seed in range(30):
        guests = [
            GuestProgram("vcpu0", [*SETUP, SendSgi(3, (2,))]),
            GuestProgram("vcpu1", [*SETUP, SendSgi(3, (2,))]),
            GuestProgram("vcpu2", [*SETUP, Ack(), Eoir(), Ack(), Eoir()]),
        ]
        out = run_scenario(config, guests, seed=seed, k=300)
        assert out.result.outcome is Outcome.QUIESCENT, (seed, out.result.finding)
        assert out.failures == [], seed
        assert sorted(out.machine.guests[2].acked) == [3, 3 | 1 << 10], seed
        irq = out.machine.kvm.vcpus[2].private_irqs[3]
        assert irq.source == 0 and not irq.pending_latch and not irq.active, seed


def test_gicv2_sgir_filters_and_sgi_pending_registers():
    """TargetListFilter 1 = all but self, 2 = self only; GICD_SPENDSGIR adds sources,
    CPENDSGIR removes them (unlatching when none remain); ISPENDR SGI bits are WI."""
    reads = []

    async def body(kvm):
        def sgir(vcpu, value):
            return vgic_mmio_access(kvm, MmioAccess(vcpu, "SGIR", value & 0xF, True, value))

        await sgir(0, 1 << 24 | 5)  # all but vCPU0
        await sgir(2, 2 << 24 | 6)  # vCPU2 itself
        await vgic_mmio_access(kvm, MmioAccess(1, "SPENDSGIR", 7, True, 0b101))
        reads.append(await vgic_mmio_access(kvm, MmioAccess(1, "SPENDSGIR", 7, False)))
        await vgic_mmio_access(kvm, MmioAccess(1, "CPENDSGIR", 7, True, 0b001))
        reads.append(await vgic_mmio_access(kvm, MmioAccess(1, "CPENDSGIR", 7, False)))
        await vgic_mmio_access(kvm, MmioAccess(0, "ISPENDR", 8, True))

    kvm = drive(VmConfig(nr_vcpus=3, gic_model=GicVersion.V2), body)
    assert [v.private_irqs[5].source for v in kvm.vcpus] == [0, 1, 1]
    assert [v.private_irqs[6].source for v in kvm.vcpus] == [0, 0, 0b100]
    assert reads == [0b101, 0b100] and kvm.vcpus[1].private_irqs[7].pending_latch
    assert not kvm.vcpus[0].private_irqs[8].pending_latch
