"""The resample oracle: a resampling irqfd is signalled once per guest deactivation.

A level SPI behind an irqfd with KVM_IRQFD_FLAG_RESAMPLE (VFIO INTx) is lowered and its
resamplefd signalled by irqfd_resampler_ack (virt/kvm/eventfd.c), which KVM runs from
kvm_notify_acked_irq when the fold sees the guest's deactivation (vgic-v3.c:
vgic_v3_fold_lr at 1c3b3cadcd69; vgic-v2.c: vgic_v2_fold_lr on a GICv2 host). The device
sees only its resamplefd, so the oracle counts what the device saw (`EventFd.signals`)
against what the guest did (the ledger's completed deactivations, of interrupts it had
acknowledged: an EOIR of one it never took is no deactivation): fewer signals than
deactivations is `resample-lost`, whatever the run then did (the device waits for ever:
a deadlock; the line never drops: an interrupt storm, a livelock; a later EOI that
spans an exit notifies at last: an acknowledge too many). The violation names where the
notification was dropped, the root cause in the finding's signature:

- ``vgic_v3_fold_lr:no-notify`` (or vgic_v2_fold_lr): KVM called kvm_notify_acked_irq
  fewer times than the guest deactivated (F3: a level SPI acknowledged and EOIed in one
  guest run folds with KVM's copy never Active, so ``deactivated`` is false);
- ``irqfd_resampler_ack:not-signalled``: KVM notified, the resamplefd was not signalled.

The other bound, `resample-extra`: more signals than the guest's deactivation writes.
kvm_notify_acked_irq runs only from the folds (vgic_v3_fold_lr for LRs, EOIcount units and
vgic_v3_deactivate's pseudo-LR; vgic_v2_fold_lr), after the guest's write, once per Invalid
LR with the EOI bit, so no version notifies more often than the guest deactivates.
"""

from __future__ import annotations

from vgic_actors.checks.catalogue import INVARIANTS
from vgic_actors.checks.violation import Violation
from vgic_actors.guest.ledger import GuestLedger, irq_key
from vgic_actors.kvm.irq import IrqConfig
from vgic_actors.kvm.vm import Kvm

SPI_BASE = 32


def resample_violations(kvm: Kvm, ledger: GuestLedger, *, settled: bool) -> list[Violation]:
    """`resample-lost` for each resampled SPI whose resamplefds were signalled fewer times
    than the guest deactivated it. ``settled``: the run ended quiescent (every vCPU has
    exited and folded); otherwise each vCPU may still hold one unfolded deactivation."""
    routing = kvm.irq_routing
    slack = 0 if settled else len(kvm.vcpus)
    out = []
    for resampler in routing.resamplers:
        fds = [i.resamplefd for i in resampler.irqfds if i.resamplefd is not None]
        if not fds:
            continue
        signals = min(fd.signals for fd in fds)
        most = max(fd.signals for fd in fds)
        for pin in sorted(p for p, gsi in routing.chip.items() if gsi == resampler.gsi):
            intid = pin + SPI_BASE
            spi = kvm.dist.spis[pin] if pin < len(kvm.dist.spis) else None
            if spi is None or spi.config is not IrqConfig.LEVEL:
                continue  # an edge SPI has no EOI notification on any version: no resample owed
            deactivations = ledger.completed[irq_key(0, intid)]
            attempts = ledger.deactivations[irq_key(0, intid)]
            if most > attempts:
                out.append(_extra(kvm, intid, most, attempts))
            if signals >= deactivations - slack:
                continue
            notified = kvm.acked_notifications.count(intid)
            if notified < deactivations - slack:
                fold = "vgic_v2_fold_lr" if kvm.config.host_v2 else "vgic_v3_fold_lr"
                how, outcome = fold, "no-notify"
                why = f"KVM notified {notified} times (kvm_notify_acked_irq)"
            else:
                how, outcome = "irqfd_resampler_ack", "not-signalled"
                why = f"KVM notified {notified} times, the resamplefd was not signalled"
            out.append(Violation(
                invariant="resample-lost", kind=INVARIANTS["resample-lost"].kind,
                message=f"SPI {intid} was deactivated {deactivations} times by the guest "
                f"(last: {ledger.last_deactivation.get(irq_key(0, intid), '?')}) but its "
                f"resamplefd was signalled {signals} times; {why}",
                how=how, outcome=outcome))
    return out


def _extra(kvm: Kvm, intid: int, signals: int, attempts: int) -> Violation:
    """`resample-extra`: more resamples than the guest's deactivations of ``intid`` (every
    EOIR/DIR/ICACTIVER it wrote, held or not: the bound holds at any moment, since the fold
    notifies only after the guest's write). Named like `resample-lost`: where the extra
    one came from."""
    notified = kvm.acked_notifications.count(intid)
    if notified > attempts:
        how = "vgic_v2_fold_lr" if kvm.config.host_v2 else "vgic_v3_fold_lr"
        outcome, why = "extra-notify", f"KVM notified {notified} times (kvm_notify_acked_irq)"
    else:
        how, outcome = "irqfd_resampler_ack", "extra-signal"
        why = f"KVM notified {notified} times, the resamplefd was signalled more"
    return Violation(
        invariant="resample-extra", kind=INVARIANTS["resample-extra"].kind,
        message=f"SPI {intid}'s resamplefd was signalled {signals} times but the guest "
        f"deactivated it at most {attempts} times; {why}", how=how, outcome=outcome)
