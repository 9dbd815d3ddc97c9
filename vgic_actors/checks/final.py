"""Invariants judged when a run ends (quiescent or not), from the model's final state.

Reads the kernel model (every vgic_irq, ap_list, shadow HCR, active_spis), the
guests' shared ledger and the runtime's outcome. Safety checks here are the
end-of-run form of properties the soak also checks along the way.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from vgic_actors.checks.catalogue import INVARIANTS
from vgic_actors.checks.delivery import delivery_violations
from vgic_actors.checks.loss import LossTracker
from vgic_actors.checks.resample import resample_violations
from vgic_actors.checks.violation import Violation, violation

__all__ = ["Violation", "all_irqs", "ap_list_violations", "check_run", "context_violation",
           "irq_name", "is_active", "stale_touch_violations", "undercount_violations",
           "violation"]
from vgic_actors.guest import GuestProgram
from vgic_actors.guest.host import HostProgram
from vgic_actors.guest.ledger import GuestLedger, irq_key
from vgic_actors.kvm.irq import VgicIrq, irq_is_pending
from vgic_actors.kvm.vgic import vgic_model_needs_bcst_kick
from vgic_actors.kvm.vm import Kvm
from vgic_actors.runtime import ContextViolation, Outcome, RunResult


def irq_name(irq: VgicIrq) -> str:
    """How a kernel engineer names it: 'SPI 32', 'vcpu1 PPI 27', 'LPI 8192'."""
    if irq.is_lpi:
        return f"LPI {irq.intid}"
    if irq.is_spi:
        return f"SPI {irq.intid}"
    kind = "SGI" if irq.intid < 16 else "PPI"
    return f"vcpu{irq.target_vcpu} {kind} {irq.intid}"


def _irq_groups(kvm: Kvm) -> list[list[VgicIrq]]:
    """Each vCPU's private vgic_irqs, the SPIs, the LPIs."""
    lpis = kvm.dist.lpi_xa
    return [vcpu.private_irqs for vcpu in kvm.vcpus] + [kvm.dist.spis,
                                                        [lpis[k] for k in sorted(lpis)]]


def all_irqs(kvm: Kvm) -> Iterator[VgicIrq]:
    """Every vgic_irq of the VM: each vCPU's private ones, the SPIs, the LPIs."""
    for group in _irq_groups(kvm):
        yield from group


def is_active(kvm: Kvm, irq: VgicIrq) -> bool:
    """Active in KVM's copy, or in the List Register holding it right now."""
    if irq.active:
        return True
    if irq.on_lr and irq.vcpu is not None:
        for lr in kvm.vcpus[irq.vcpu].cpuif.state.lrs:
            if lr.vintid == irq.intid and lr.state.active:
                return True
    return False


def check_run(kvm: Kvm, guests: Sequence[GuestProgram], ledger: GuestLedger,
              result: RunResult, vmm: Sequence[HostProgram] = (),
              loss: LossTracker | None = None) -> list[Violation]:
    """Every end-of-run invariant and warning, in catalogue order. A run that went quiet
    while a guest or VMM program still had steps to run is a deadlock (a lost wake-up).
    ``loss``: the run's `LossTracker`, which names where a lost deactivation was lost."""
    out: list[Violation] = []
    if result.outcome is Outcome.DEADLOCK:
        out.append(violation("deadlock", result.finding.message if result.finding else ""))
    elif result.outcome is Outcome.QUIESCENT:
        stuck = [f"{g.name} at pc{g.pc} ({type(g.ops[g.pc]).__name__})"
                 for g in guests if not g.done]
        stuck += [f"{p.name} at step {p.pc} ({type(p.steps[p.pc]).__name__})"
                  for p in vmm if not p.done]
        if stuck:
            out.append(violation("deadlock", "the run went quiet with work left: "
                                 + ", ".join(stuck) + " waits for ever"))
    elif result.outcome in (Outcome.LIVELOCK, Outcome.BUDGET):
        out.append(violation("livelock", result.finding.message if result.finding
                             else f"step budget spent ({result.steps} steps)"))
    out += [violation("guest-assertion", f) for g in guests for f in g.failures]
    if result.outcome is Outcome.QUIESCENT:  # a run cut short has deactivations in flight
        out += _deactivations(kvm, ledger, loss)
    out += resample_violations(kvm, ledger, settled=result.outcome is Outcome.QUIESCENT)
    out += delivery_violations(kvm, guests, vmm, ledger)
    out += ap_list_violations(kvm)
    out += undercount_violations(kvm)
    out += _phys_deactivations(kvm)
    out += [context_violation(cv) for cv in result.context_violations]
    out += stale_touch_violations(kvm)
    out += _tdir_sticky(kvm, result)
    return out


def context_violation(cv: ContextViolation) -> Violation:
    """A lockdep-style report as a violation: what, the call chain, the open regions."""
    chain = " -> ".join(cv.chain) if cv.chain else "?"
    return violation(cv.invariant, f"{cv.message}; on {cv.actor}: {chain}; {cv.context}")


def _deactivations(kvm: Kvm, ledger: GuestLedger,
                   loss: LossTracker | None = None) -> list[Violation]:
    out = []
    for irq in all_irqs(kvm):
        owner = irq.target_vcpu if irq.is_private else 0
        key = irq_key(owner if owner is not None else 0, irq.intid)
        if not is_active(kvm, irq) or ledger.held[key] > 0 or ledger.deactivations[key] == 0:
            continue
        where = (f"in vcpu{irq.vcpu}'s List Register" if irq.on_lr
                 else f"on vcpu{irq.vcpu}'s ap_list" if irq.vcpu is not None else "off any ap_list")
        story = loss.describe(owner, irq.intid) if loss is not None else ""
        out.append(Violation(
            invariant="deactivation-lost", kind=INVARIANTS["deactivation-lost"].kind,
            message=f"{irq_name(irq)} is still Active ({where}) after its last deactivation "
            f"({ledger.last_deactivation[key]}); no vCPU holds it" + (f"; {story}" if story
                                                                     else ""),
            how=ledger.last_kind.get(key, ""), outcome=ledger.last_outcome.get(key, ""),
            where="in-lr" if irq.on_lr else "on-ap-list" if irq.vcpu is not None
            else "off-ap-list", site=loss.site(owner, irq.intid) if loss is not None else "",
        ))
    return out


def ap_list_violations(kvm: Kvm) -> list[Violation]:
    """irq->vcpu and ap_list membership agree; no INTID on two ap_lists."""
    out = []
    seen: dict[int, int] = {}
    for vcpu in kvm.vcpus:
        for irq in vcpu.ap_list:
            ident = id(irq)
            if ident in seen:
                out.append(violation("ap-list-consistency",
                                     f"{irq_name(irq)} is on vcpu{seen[ident]}'s and "
                                     f"vcpu{vcpu.vcpu_id}'s ap_lists"))
            seen[ident] = vcpu.vcpu_id
            if irq.vcpu != vcpu.vcpu_id:
                out.append(violation("ap-list-consistency",
                                     f"{irq_name(irq)} is on vcpu{vcpu.vcpu_id}'s ap_list "
                                     f"but irq->vcpu is {irq.vcpu}"))
    for irq in _owned_irqs(kvm):
        if id(irq) not in seen:
            out.append(violation("ap-list-consistency",
                                 f"{irq_name(irq)} has irq->vcpu = {irq.vcpu} but is on "
                                 "no ap_list"))
    return out


def _owned_irqs(kvm: Kvm) -> list[VgicIrq]:
    """The vgic_irqs with irq->vcpu set, in `all_irqs` order (one comprehension: the step
    monitor calls this at every kernel event)."""
    return [irq for group in _irq_groups(kvm) for irq in group if irq.vcpu is not None]


def undercount_violations(kvm: Kvm) -> list[Violation]:
    """With SPI tracking on a GICv3 model, an Active SPI on an ap_list keeps active_spis > 0."""
    if not (kvm.sw.active_spis_accounting and vgic_model_needs_bcst_kick(kvm)):
        return []
    if kvm.dist.active_spis.peek() > 0:
        return []
    for irq in kvm.dist.spis:
        if irq.vcpu is not None and is_active(kvm, irq):
            return [violation("active-spis-undercount",
                              f"{irq_name(irq)} is Active on vcpu{irq.vcpu}'s ap_list while "
                              "active_spis is 0")]
    return []


def _phys_deactivations(kvm: Kvm) -> list[Violation]:
    phys = kvm.phys
    out = [violation("phys-deactivation-once",
                     f"physical INTID {hw} deactivated while not Active (a second "
                     "deactivation of one activation)")
           for hw in sorted(set(phys.spurious_deactivations))]
    for hw in sorted(phys.mappings):
        mapping = phys.mappings[hw]
        vcpu = kvm.vcpus[mapping.vcpu_id] if mapping.vcpu_id is not None else None
        irq = kvm.vgic_get_irq(vcpu, mapping.vintid)
        if phys.line(hw).active and irq is not None and irq.hw and not is_active(kvm, irq) \
                and not irq_is_pending(irq) and irq.vcpu is None:
            out.append(violation("phys-deactivation-once",
                                 f"physical INTID {hw} still Active though {irq_name(irq)}, "
                                 "mapped to it, is neither pending nor active"))
    return out


def stale_touch_violations(kvm: Kvm) -> list[Violation]:
    """irq-use-after-unlink: every stale pointer the kernel model followed
    (Kvm.vgic_irq_stale, Kvm.vgic_put_irq), in the order it happened."""
    return [violation("irq-use-after-unlink", m) for m in kvm.stale_touches]


def _tdir_sticky(kvm: Kvm, result: RunResult) -> list[Violation]:
    if result.outcome is not Outcome.QUIESCENT:
        return []
    in_flight = any(irq.vcpu is not None and (is_active(kvm, irq) or irq_is_pending(irq))
                    for irq in kvm.dist.spis)
    sticky = [v.vcpu_id for v in kvm.vcpus if v.vgic_hcr.tdir]
    if in_flight or not sticky:
        return []
    return [violation("tdir-sticky",
                      f"TDIR set at the last entry of vcpu{', vcpu'.join(map(str, sticky))} with "
                      f"no SPI in flight (active_spis = {kvm.dist.active_spis.peek()})")]
