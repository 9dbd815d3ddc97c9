"""Kernel-path coverage: which branches of the vGIC code a run took, and how often.

The kernel model counts each path as it takes it (`Kvm.coverage`, a Counter keyed by the
names below); a run reports its counts (RunReport.coverage), `vgic-actors run
--coverage` and every soak print the table, flagging the paths never reached. A race
hunter that cannot say what it explored cannot say that a kernel is clean.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

PATHS: dict[str, str] = {
    "queue.insert": "vgic_queue_irq_unlock: an irq put on a vCPU's ap_list",
    "queue.retry": "vgic_queue_irq_unlock: something changed behind our backs; retry",
    "queue.broadcast": "vgic_queue_irq_unlock: active_spis 0 -> 1, kvm_make_all_cpus_request",
    "queue.single-kick": "vgic_queue_irq_unlock: kick the target only",
    "queue.already-queued": "vgic_queue_irq_unlock: already on an ap_list, kick its owner",
    "active_spis.inc": "atomic_fetch_inc(&active_spis) on an SPI's insertion",
    "active_spis.dec": "atomic_dec_if_positive(&active_spis) in the fold (a level SW SPI)",
    "flush.sort": "vgic_flush_lr_state: more entries than LRs, vgic_sort_ap_list",
    "hcr.tdir-actives-outside": "vgic_v3_configure_hcr: TDIR for actives outside the LRs",
    "hcr.tdir-active-spis": "vgic_v3_configure_hcr: TDIR for a non-zero active_spis",
    "hcr.npie": "vgic_v3_configure_hcr: NPIE (pending outside the LRs)",
    "hcr.lrenpie": "vgic_v3_configure_hcr: LRENPIE (active outside the LRs)",
    "hcr.uie": "vgic_v3_configure_hcr: UIE (anything outside the LRs)",
    "fold.deactivated": "vgic_v3_fold_lr: KVM's copy was active, the LR is not",
    "fold.eoi-notify": "vgic_v3_fold_lr: kvm_notify_acked_irq for a deactivated level SPI",
    "fold.pending-kept": "vgic_v3_fold_lr: the LR still pending",
    "fold.pseudo-lr": "vgic_v3_fold_lr of a pseudo-LR (EOIcount replay or DIR emulation)",
    "eoicount.replay": "vgic_v3_fold_lr_state: one unit of EOIcount replayed on the ap_list",
    "prune.remove": "vgic_prune_ap_list: an entry that goes nowhere removed",
    "prune.migrate": "vgic_prune_ap_list: an entry migrated to another vCPU's ap_list",
    "deactivate.not-queued": "vgic_v3_deactivate: on no ap_list, nothing to do",
    "deactivate.icactiver": "vgic_v3_deactivate: in an LR, the ICACTIVER big hammer",
    "deactivate.pseudo-lr": "vgic_v3_deactivate: active outside the LRs, pseudo-LR folded",
    "deactivate.ignored": "vgic_v3_deactivate: EOImode 0 or out of range",
    "deactivate.hyp-lr": "__vgic_v3_perform_cpuif_access: DIR cleared in this vCPU's LR",
    "deactivate.hyp-eoicount": "__vgic_v3_perform_cpuif_access: DIR with TDIR clear (EOIcount)",
    "halt": "kvm_arm_halt_guest (ICACTIVER/ISACTIVER with every vCPU stopped)",
    "flush.overflow-multi": "vgic_flush_lr_state overflowing while another vCPU's ap_list "
                            "holds more entries than LRs too (the model's count)",
    "hw.host-inject": "kvm_arch_timer_handler (or a forwarded SPI's): kvm_vgic_inject_irq",
    "hw.deactivate-lr": "physical deactivation through an LR's HW bit (guest EOIR/DIR)",
    "hw.deactivate-kvm": "vgic_v3_deactivate_phys / vgic_hw_irq_change_active: KVM "
                         "deactivates the physical interrupt (trapped DIR, EOIcount, ICACTIVER)",
    "its.discard-queued": "vgic_its_cmd_handle_discard of an LPI on an ap_list",
    "its.movi-queued": "vgic_its_cmd_handle_movi of an LPI on an ap_list (update_affinity)",
    "its.inv-disable-queued": "update_lpi_config clearing the enable of an LPI on an ap_list",
    "mmio.cpending-queued": "vgic_mmio_write_cpending of an irq on an ap_list",
    "mmio.sactive": "vgic_mmio_write_sactive: a guest GICD/GICR_ISACTIVER write",
    "uaccess.write": "the VMM's ISACTIVER, ICACTIVER or ICPENDR write (vgic_mmio_uaccess_"
                     "write_sactive/cactive, vgic_uaccess_write_cpending)",
}
"""Every path the table reports, with the kernel code it stands for."""


def merge(counts: Iterable[Mapping[str, int]]) -> Counter[str]:
    """The sum of several runs' counts."""
    total: Counter[str] = Counter()
    for c in counts:
        total.update(c)
    return total


def unreached(counts: Mapping[str, int]) -> list[str]:
    """The paths of `PATHS` taken fewer than once."""
    return [p for p in PATHS if counts.get(p, 0) == 0]


def render(counts: Mapping[str, int], *, runs: int, threshold: int = 1) -> str:
    """The coverage table: one line per path (count, what it is), marks on paths taken
    fewer than `threshold` times, and the count of those."""
    width = max(len(p) for p in PATHS)
    lines = [f"kernel-path coverage over {runs} runs:"]
    low = 0
    for path, what in PATHS.items():
        n = counts.get(path, 0)
        mark = "  " if n >= threshold else "!!"
        low += n < threshold
        lines.append(f"  {mark} {path:<{width}} {n:>9}  {what}")
    lines.append(f"  {low} of {len(PATHS)} paths taken fewer than {threshold} times"
                 if low else f"  every path taken at least {threshold} times")
    return "\n".join(lines)
