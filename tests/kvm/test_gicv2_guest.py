"""peer-tests.md S15: a GICv2 guest's asymmetric SPI deactivation (the GICV_DIR page traps)."""

import io

from vgic_actors.arch import GicVersion
from vgic_actors.events import DirEmulated, HcrConfigured, IrqQueued, KickSent, decode_lines
from vgic_actors.kvm.vm import VmConfig
from vgic_actors.runtime import Outcome

from .scenarios import asym_dir_guests, run_scenario


def test_gicv2_guest_deactivates_through_the_trapped_dir_page_without_broadcast():
    """Every GICV_DIR write is an MMIO exit: the deactivation works even with unbounded IPI
    latency, with no TDIR in any HCR, no active_spis count and no broadcast kick."""
    config = VmConfig(variant="merged", gic_model=GicVersion.V2)
    for seed in range(60):
        log = io.BytesIO()
        out = run_scenario(config, asym_dir_guests(), seed=seed, strategy="random", log=log)
        assert out.result.outcome is Outcome.QUIESCENT, seed
        assert out.failures == [], seed
        events = list(decode_lines(log.getvalue().splitlines()))
        assert not any(isinstance(e, HcrConfigured) and e.tdir for e in events)
        assert all(not e.bcst for e in events if isinstance(e, IrqQueued))
        assert out.machine.kvm.dist.active_spis.peek() == 0
        dirs = [e for e in events if isinstance(e, DirEmulated)]
        assert [(d.vcpu, d.intid) for d in dirs] == [(1, 32)]
        ipis = [e for e in events if isinstance(e, KickSent) and e.how == "ipi"]
        assert all(e.req != 9 for e in ipis)  # no IRQ_PENDING broadcast legs


def test_gicv2_guest_acks_group0_as_virq():
    """KVM's GICv2 guests use Group 0, signalled as vIRQ while GICH_VMCR.VMFIQEn is clear."""
    out = run_scenario(VmConfig(gic_model=GicVersion.V2), asym_dir_guests(), seed=0)
    assert out.machine.guests[0].acked == [32]
    assert out.machine.kvm.dist.spis[0].group == 0
