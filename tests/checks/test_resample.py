"""The resample oracle and F3's root cause: one signature, and one per loss site."""

from pathlib import Path

import pytest

from vgic_actors.checks.signature import Signature
from vgic_actors.checks.violation import Violation, violation
from vgic_actors.kvm import userspace
from vgic_actors.scenario import load_scenario
from vgic_actors.scenario.runner import run_once

RESAMPLE = Path(__file__).parents[2] / "scenarios" / "irqfd_resample.yaml"


def _lost(report) -> list[Violation]:
    return [v for v in report.violations if v.invariant == "resample-lost"]


def _signature(report) -> Signature:
    return Signature.of(report.violations, "ordering")


def test_merged_drops_the_resample_in_the_fold_and_pre_series_does_not():
    """F3: the GICv3 fold never notifies for an ack+EOI in one run; pre-series notifies."""
    scenario = load_scenario(RESAMPLE)
    for seed in range(3):
        lost = _lost(run_once(scenario, "merged", seed, "pct:3"))
        assert [(v.how, v.outcome) for v in lost] == [("vgic_v3_fold_lr", "no-notify")]
        assert "KVM notified 0 times" in lost[0].message
        assert not run_once(scenario, "pre-series", seed, "pct:3").violations


def test_two_planted_loss_sites_give_two_signatures(monkeypatch):
    """A resample lost in the fold (merged's F3) and one lost after kvm_notify_acked_irq
    (pre-series with an irqfd_resampler_ack that lowers the line but signals nothing) are
    two findings, each naming its kernel function."""
    scenario = load_scenario(RESAMPLE)
    fold = _signature(run_once(scenario, "merged", 0, "pct:3"))

    def silent_ack(kvm, resampler):
        async def irqfd_resampler_ack() -> None:
            await userspace.kvm_set_irq(kvm, resampler.gsi, False)
        return irqfd_resampler_ack

    monkeypatch.setattr(userspace, "_resampler_ack", silent_ack)
    ack = _signature(run_once(scenario, "pre-series", 0, "pct:3"))
    assert fold.key == "ordering/resample-lost/vgic_v3_fold_lr:no-notify"
    assert ack.key == "ordering/resample-lost/irqfd_resampler_ack:not-signalled"
    assert not fold.same_finding(ack)


@pytest.mark.parametrize("symptom", ["deadlock", "livelock", "budget-spent", "expectation"])
def test_f3s_symptoms_are_one_root_cause(symptom):
    """The device waiting for ever, the interrupt storm and the extra acknowledge all sign
    as the resample the fold dropped."""
    cause = Violation(invariant="resample-lost", kind="liveness", message="m",
                      how="vgic_v3_fold_lr", outcome="no-notify")
    sig = Signature.of([violation(symptom, "s"), cause], "ordering")
    assert sig.key == "ordering/resample-lost/vgic_v3_fold_lr:no-notify"
    assert Signature.from_key(sig.key) == sig


def test_a_cut_short_run_allows_one_unfolded_deactivation_per_vcpu():
    """A run that ends on its step budget may hold a deactivation not yet folded: the oracle
    judges it only beyond that, so a storm is caught and a late fold is not."""
    from vgic_actors.checks.resample import resample_violations
    from vgic_actors.guest.ledger import GuestLedger
    from vgic_actors.kvm.irq import IrqConfig, VgicIrq
    from vgic_actors.kvm.irq_routing import EventFd, Irqfd, IrqfdResampler, KvmIrqRouting

    class _Kvm:
        def __init__(self) -> None:
            self.config = type("C", (), {"host_v2": False})()
            self.vcpus = [object()]
            spi = VgicIrq(intid=35, config=IrqConfig.LEVEL)
            self.dist = type("D", (), {"spis": [VgicIrq(intid=32 + i) for i in range(3)] + [spi]})()
            self.acked_notifications: list[int] = []
            self.irq_routing = KvmIrqRouting()
            self.irq_routing.chip[3] = 7
            resampler = IrqfdResampler(gsi=7)
            resampler.irqfds.append(Irqfd(gsi=7, eventfd=EventFd("d"),
                                          resamplefd=EventFd("d.resample")))
            self.irq_routing.resamplers.append(resampler)

    ledger = GuestLedger()
    ledger.acked(0, 35)
    ledger.deactivated(0, 35, "EOIR", "EOIR")
    kvm = _Kvm()
    assert resample_violations(kvm, ledger, settled=False) == []  # type: ignore[arg-type]
    assert len(resample_violations(kvm, ledger, settled=True)) == 1  # type: ignore[arg-type]
    for _ in range(3):
        ledger.acked(0, 35)
        ledger.deactivated(0, 35, "EOIR", "EOIR")
    assert len(resample_violations(kvm, ledger, settled=False)) == 1  # type: ignore[arg-type]


def test_an_eoir_of_an_interrupt_never_acknowledged_is_no_deactivation():
    """A guest EOIR of an SPI it never acknowledged (a shrunk scenario's leftover) changes
    no state, so no resample is owed for it."""
    from vgic_actors.guest.ledger import GuestLedger, irq_key

    ledger = GuestLedger()
    ledger.deactivated(0, 35, "EOIR", "EOIR")
    key = irq_key(0, 35)
    assert ledger.deactivations[key] == 1 and ledger.completed[key] == 0
    ledger.acked(0, 35)
    ledger.deactivated(0, 35, "EOIR", "EOIR")
    assert ledger.completed[key] == 1


def test_an_edge_spi_behind_a_resampling_irqfd_is_not_judged():
    """No version notifies an edge SPI's EOI, so a VMM that leaves the SPI edge gets no
    resample anywhere: the oracle judges only level SPIs (what KVM_IRQFD_FLAG_RESAMPLE is
    for)."""
    from types import SimpleNamespace

    from vgic_actors.checks.resample import resample_violations
    from vgic_actors.guest.ledger import GuestLedger
    from vgic_actors.kvm.irq import IrqConfig, VgicIrq
    from vgic_actors.kvm.irq_routing import EventFd, Irqfd, IrqfdResampler, KvmIrqRouting

    def kvm_with(config):
        routing = KvmIrqRouting()
        routing.chip[3] = 7
        resampler = IrqfdResampler(gsi=7)
        resampler.irqfds.append(Irqfd(gsi=7, eventfd=EventFd("d"),
                                      resamplefd=EventFd("d.r")))
        routing.resamplers.append(resampler)
        spis = [VgicIrq(intid=32 + i) for i in range(3)] + [VgicIrq(intid=35, config=config)]
        return SimpleNamespace(config=SimpleNamespace(host_v2=False), vcpus=[object()],
                               acked_notifications=[], irq_routing=routing,
                               dist=SimpleNamespace(spis=spis))

    ledger = GuestLedger()
    ledger.acked(0, 35)
    ledger.deactivated(0, 35, "EOIR", "EOIR")
    assert resample_violations(kvm_with(IrqConfig.EDGE), ledger, settled=True) == []
    assert len(resample_violations(kvm_with(IrqConfig.LEVEL), ledger, settled=True)) == 1
