"""Who owns an interrupt and in which order a vCPU presents its ap_list (vgic.c).

vgic_target_oracle, vgic_irq_cmp / vgic_sort_ap_list and the ap_list
summary (struct ap_list_summary and the irqs_*_outside_lrs macros). All run
with the locks the kernel holds at that point (irq_lock; ap_list_lock for the
sort and the summary), so they are plain functions: nothing here interleaves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cmp_to_key

from vgic_actors.arch.registers import IchVmcr
from vgic_actors.kvm.irq import VgicIrq, irq_is_pending
from vgic_actors.kvm.variants import KernelSwitches


def vgic_target_oracle(irq: VgicIrq, dist_enabled: bool) -> int | None:
    """The vCPU whose ap_list should hold ``irq`` now, or None.

    vgic.c: vgic_target_oracle (irq_lock held). An active irq stays where it is
    (or goes to its target if on no list); an enabled pending one goes to its
    target unless the distributor is disabled; anything else goes nowhere.
    """
    if irq.active:
        return irq.vcpu if irq.vcpu is not None else irq.target_vcpu
    if irq.enabled and irq_is_pending(irq):
        if irq.target_vcpu is not None and not dist_enabled:
            return None
        return irq.target_vcpu
    return None


def _group_enabled(vmcr: IchVmcr, group: int) -> bool:
    return vmcr.veng1 if group else vmcr.veng0


def vgic_irq_cmp(
    vcpu_id: int, vmcr: IchVmcr, dist_enabled: bool, sw: KernelSwitches, a: VgicIrq, b: VgicIrq
) -> int:
    """Order two ap_list entries: negative when ``a`` goes first.

    vgic.c: vgic_irq_cmp (both irq_locks held), keys most significant first:
    1. deliverable to this vCPU (oracle == vcpu) first;
    2. group enabled in this vCPU's VMCR first;
    3. purely pending (enabled, pending, not active) first;
    4. lower priority value first;
    5. HW before non-HW.
    Variant pre-series: keys 1-2 absent and key 3 inverted (active first).
    """
    if sw.undeliverable_to_tail:
        a_ok = vgic_target_oracle(a, dist_enabled) == vcpu_id
        b_ok = vgic_target_oracle(b, dist_enabled) == vcpu_id
        if a_ok != b_ok:
            return -1 if a_ok else 1
        a_ok, b_ok = _group_enabled(vmcr, a.group), _group_enabled(vmcr, b.group)
        if a_ok != b_ok:
            return -1 if a_ok else 1
    a_pend = a.enabled and irq_is_pending(a) and not a.active
    b_pend = b.enabled and irq_is_pending(b) and not b.active
    if sw.sort_pending_first:
        if a_pend != b_pend:
            return -1 if a_pend else 1
    else:
        if a.active != b.active:
            return -1 if a.active else 1
    if a.priority != b.priority:
        return -1 if (a.priority < b.priority) != sw.mutant_priority_inverted else 1
    if a.hw != b.hw:
        return -1 if a.hw else 1
    return 0


def vgic_sort_ap_list(
    ap_list: list[VgicIrq], vcpu_id: int, vmcr: IchVmcr, dist_enabled: bool, sw: KernelSwitches
) -> None:
    """vgic.c: vgic_sort_ap_list (ap_list_lock held). Stable, like list_sort."""
    ap_list.sort(key=cmp_to_key(lambda a, b: vgic_irq_cmp(vcpu_id, vmcr, dist_enabled, sw, a, b)))


@dataclass(frozen=True, slots=True)
class ApListSummary:
    """vgic.h: struct ap_list_summary, counted over entries whose oracle is this vCPU."""

    nr_pend: int = 0
    nr_act: int = 0
    nr_sgi: int = 0

    def outside_lrs(self, nr_lr: int) -> bool:
        """irqs_outside_lrs: more deliverable entries than List Registers."""
        return self.nr_pend + self.nr_act > nr_lr

    def pending_outside_lrs(self, nr_lr: int) -> bool:
        """irqs_pending_outside_lrs: more purely-pending entries than List Registers."""
        return self.nr_pend > nr_lr

    def active_outside_lrs(self, nr_lr: int) -> bool:
        """irqs_active_outside_lrs: some active entry may have been pushed out of the LRs."""
        return self.nr_act != 0 and self.outside_lrs(nr_lr)


def summarize_ap_list(
    ap_list: Sequence[VgicIrq], vcpu_id: int, dist_enabled: bool
) -> ApListSummary:
    """vgic.c: summarize_ap_list (ap_list_lock held; each irq_lock taken in turn).

    Pending+active counts as active; SGIs are counted once per entry.
    """
    nr_pend = nr_act = nr_sgi = 0
    for irq in ap_list:
        if vgic_target_oracle(irq, dist_enabled) != vcpu_id:
            continue
        if irq.active:
            nr_act += 1
        else:
            nr_pend += 1
        if irq.intid < 16:
            nr_sgi += 1
    return ApListSummary(nr_pend, nr_act, nr_sgi)
