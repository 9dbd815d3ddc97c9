"""Kernel versions as data: one frozen set of switches over one code path.

Every variant of kernel-vgic.md section 12 is a ``KernelSwitches`` value with a
one-line story; the synthetic *mutants* (bugs nobody shipped, planted so the
soak can prove it finds bugs) are switches too. The model's functions read
these switches at the exact place the versions differ, and nowhere else.
``vgic-actors variants`` prints the catalogue.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Literal

from vgic_actors.errors import UsageError

EoicountWalkStart = Literal["head", "after_last_lr"]
BcstKick = Literal["off", "v3_model", "v3_model_and_tdir_cap"]
DeactivateOwner = Literal["irq_vcpu", "oracle_with_inactive_shortcut"]
IcactiverOffset = Literal["word", "v1_bug"]
OverflowMis = Literal["full", "uie_only"]


@dataclass(frozen=True, slots=True)
class KernelSwitches:
    """The places where kernel versions differ. Defaults: ``merged`` (6.19 + 6da5e537f5af)."""

    # EOImode=0 EOIcount replay (vgic_v3_fold_lr_state): "head" walks from the
    # ap_list head (3cfd59f81e0f as merged, bug K1); "after_last_lr" starts after
    # the last entry the flush put in an LR, per pCPU, and the fold returns at
    # once when no LR was populated (fix 6da5e537f5af).
    eoicount_walk_start: EoicountWalkStart = "after_last_lr"
    # Replay of EOIcount at all (absent before the LR-overflow series).
    eoicount_replay: bool = True
    # vgic_model_needs_bcst_kick: "off" (no SPI tracking), "v3_model" (v2 30/45
    # as posted), "v3_model_and_tdir_cap" (84792050e039).
    bcst_kick: BcstKick = "v3_model_and_tdir_cap"
    # active_spis incremented on ap_list insertion of an SPI and decremented on
    # EOI-MI deactivation (1c3b3cadcd69). Off: the count stays 0.
    active_spis_accounting: bool = True
    # configure_hcr forces TDIR on hosts without the TDIR capability (84792050e039).
    tdir_forced_without_cap: bool = True
    # configure_hcr sets TDIR for actives outside the LRs / a non-zero
    # active_spis; DIR trap handling exists (cd4f6ee99b28, 70fd60bdedc9).
    dir_trapping: bool = True
    # vgic_v3_deactivate's owner: "irq_vcpu" (v2 onwards) or the v1 form, owner
    # from vgic_target_oracle and an early return when KVM's copy is not active (K3).
    deactivate_owner: DeactivateOwner = "irq_vcpu"
    # The big-hammer ICACTIVER write for an SPI held in an LR: "word" =
    # (val / 32) * 4 (v2 onwards); "v1_bug" = val / 32, the wrong register (K2).
    icactiver_offset: IcactiverOffset = "word"
    # vgic_v3_deactivate matches a GICv2-model SGI's CPUID against active_source (v4 29/49).
    v2_sgi_cpuid_match: bool = True
    # irqfd_wakeup injects an irqchip (SPI) route in atomic context, in the
    # signaller's context under the eventfd's wqh lock with IRQs off
    # (kvm_arch_set_irq_inatomic: "Injecting SPIs is always possible in atomic
    # context", as posted on the kvm list); False: vgic-irqfd.c as stored at
    # 4b3c1f1b15f5, where only cached MSI translations are, and SPIs are injected by
    # the irqfd_inject work on a kworker.
    irqfd_spi_inatomic: bool = True
    # Hyp fast path: with the shadow TDIR set, a trapped DIR that hits this vCPU's own LR
    # is handled at EL2 (ca3c34da3644); without it such a DIR is a full exit (v1). Either
    # way the hyp sees DIR traps only under the vgic_v3_cpuif_trap static key
    # (VmConfig.vgic_v3_cpuif_trap: no host TDIR, or kvm-arm.vgic_v3_common_trap).
    hyp_dir_fast_path: bool = True
    # vgic_irq_cmp: purely pending before active (05984ba67eb6); pre-series sorts active first.
    sort_pending_first: bool = True
    # vgic_irq_cmp keys 1-2: undeliverable interrupts and disabled groups to the
    # tail (33c1f60b3213, a69e2d6f8934).
    undeliverable_to_tail: bool = True
    # configure_hcr exits on guest group enable/disable changes (a69e2d6f8934).
    group_enable_mis: bool = True
    # Overflow maintenance interrupts: "full" = NPIE/LRENPIE/UIE per the
    # summary (6780a756044c); "uie_only" = the pre-series underflow MI.
    overflow_mis: OverflowMis = "full"
    # fold drops the active state of vLPIs (73c9726975af).
    lpi_active_drop: bool = True
    # GICv3 fold notifies irqfds only for a deactivation KVM saw ("deactivated &&", v2 30/45).
    notify_requires_deactivated: bool = True
    # kvm_vgic_flush_hwstate returns early on an empty ap_list (removed by v4 19/49).
    flush_skips_empty_ap_list: bool = False

    # --- proposed fixes (merged+fix-*: docs/findings.md F1..F4; all off in real variants) ---
    # F1: vgic_mmio_change_active (vgic-mmio.c) waits, dropping irq_lock, while the irq
    # is on_lr in another vCPU's LRs, until that vCPU has folded it: the 4.x
    # "irq->vcpu->cpu != -1" loop restated with on_lr, which the halt cannot skip for a
    # vCPU between flush and IN_GUEST_MODE or between OUTSIDE_GUEST_MODE and sync.
    fix_change_active_waits_for_lr: bool = False
    # F2: vgic_v3_deactivate (vgic-v3.c) folds its pseudo-LR under the irq_lock it built
    # it under, so the owner cannot repopulate the LR in between (notify/dec after).
    fix_deactivate_fold_locked: bool = False
    # F3: vgic_v3_fold_lr notifies the irqfd resampler on the EOI condition alone
    # (lr_signals_eoi_mi on a valid SPI, as before v2 30/45); active_spis is still
    # decremented only for a deactivation KVM saw.
    fix_notify_on_eoi: bool = False
    # F4: kvm_arch_set_irq_inatomic (vgic-irqfd.c) leaves an irqchip route to the
    # irqfd_inject work when the VM needs the active_spis broadcast
    # (vgic_model_needs_bcst_kick), so the broadcast never runs with IRQs off.
    fix_inatomic_no_bcst: bool = False
    # F5: vgic_queue_irq_unlock (vgic.c) counts an SPI in active_spis and, on 0 -> 1,
    # broadcasts KVM_REQ_IRQ_PENDING with KVM_REQUEST_WAIT *before* putting it on the
    # ap_list (dropping the count again if it is not queued after all), so every vCPU
    # that computed TDIR from a zero count has left the guest before the SPI can be
    # acknowledged anywhere.
    fix_bcst_before_queue: bool = False
    # F6: active_spis counts SPIs on ap_lists: vgic_prune_ap_list (vgic.c) decrements it
    # where it takes an SPI off its list (the !target_vcpu branch), and vgic_v3_fold_lr
    # (vgic-v3.c) no longer does, so edge SPIs no longer leak counts (W1) and the count,
    # bounded by nr_spis, cannot wrap to 0 with an SPI in flight.
    fix_count_spis_on_ap_lists: bool = False

    # --- synthetic mutants (bugs planted for the soak to find; all off in real variants) ---
    # vgic_queue_irq_unlock kicks only the target on the 0->1 transition.
    mutant_kick_only_target: bool = False
    # The run loop does not re-check requests after smp_store_mb(mode, IN_GUEST_MODE).
    mutant_no_request_recheck: bool = False
    # fold decrements active_spis on every fold of an SPI that was active, EOI bit or not.
    mutant_dec_on_every_fold: bool = False
    # configure_hcr uses the active_spis value read before check_vcpu_requests
    # (a TDIR decision computed before the counter is read).
    mutant_stale_tdir: bool = False

    # --- planted for the acknowledge oracle (checks/ack_oracle.py) ---
    # vgic_irq_cmp sorts a lower priority (higher value) first: on overflow the guest is
    # shown a lower-priority interrupt while a higher one waits outside the LRs.
    mutant_priority_inverted: bool = False
    # --- scenario switches (issue 18): single kernel features a scenario's `kernel:` can
    # turn off to be its own negative control; the defaults are merged's behaviour ---
    # KVM's emulated deactivation of a HW-mapped interrupt reaches the physical GIC:
    # vgic.c vgic_v3_deactivate -> vgic_v3_deactivate_phys (a trapped DIR of a pseudo-LR)
    # and vgic-mmio.c vgic_hw_irq_change_active -> vgic_irq_set_phys_active (the
    # ICACTIVER path a trapped DIR of an LR-held interrupt takes). Off: the virtual
    # interrupt is deactivated and the physical one stays Active.
    hw_deactivate_phys: bool = True
    # vgic-irqfd.c kvm_set_routing_entry refuses an irqchip pin >= KVM_IRQCHIP_NUM_PINS
    # (988: SPI 1020 would be the first special INTID). Off: the off-by-one
    # "pin > KVM_IRQCHIP_NUM_PINS", a plausible regression that accepts pin 988 (the
    # injection then fails silently in vgic_irqfd_set_irq's vgic_valid_spi), which
    # vgic_irq.c test_injection_failure catches (KVM_SET_GSI_ROUTING must give EINVAL).
    routing_pin_check: bool = True


@dataclass(frozen=True, slots=True)
class Variant:
    """A named kernel version (or planted bug) with the story of what it shows."""

    name: str
    story: str
    switches: KernelSwitches
    bug: str = ""  # kernel-vgic.md 11.1 id ("K1"...), "mutant", "fix" (a proposed fix); "" if none
    shows: str = ""
    """What its own bug's signature shows, ``INVARIANT[/HOW[:OUTCOME]]``
    (`Signature.shows`): a planted bug's by construction, a version's as docs/findings.md
    and docs/benchmarks.md record it; "" where it has no single form. `bench` counts a
    finding of this variant only when it shows this."""

    @property
    def is_mutant(self) -> bool:
        """A synthetic bug, not a kernel version."""
        return self.bug == "mutant"

    @property
    def is_fix(self) -> bool:
        """A proposed fix on top of merged (``merged+fix-NAME``), not a kernel version."""
        return self.bug == "fix"


_MERGED = KernelSwitches()
_V4_APPLIED = replace(_MERGED, eoicount_walk_start="head")
_V2_POSTED = replace(
    _V4_APPLIED, bcst_kick="v3_model", tdir_forced_without_cap=False, v2_sgi_cpuid_match=False
)

VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant(
            "merged",
            "Linux 6.19 as merged plus 6da5e537f5af: EOIcount replay starts after the last "
            "LR entry; SPI tracking with the broadcast kick on TDIR-capable hosts",
            _MERGED,
        ),
        Variant(
            "v4-applied",
            "the series as applied in Nov 2025: the EOImode=0 EOIcount walk starts at the "
            "ap_list head, so a late MI deactivates an interrupt that sat in an LR",
            _V4_APPLIED,
            bug="K1",
            shows="deactivation-lost/EOIR",
        ),
        Variant(
            "v2-posted",
            "v2 with seed patch 30/45 as posted and without 32/45: broadcast on every GICv3 "
            "VM even without host TDIR; TDIR not forced without the capability",
            _V2_POSTED,
            bug="K4",
            shows="deactivation-lost/EOIR",
        ),
        Variant(
            "v1-posted",
            "v1: vgic_v3_deactivate takes the owner from the oracle and ignores inactive "
            "copies; the big-hammer ICACTIVER offset is val/32; every trapped DIR exits",
            replace(
                _MERGED, deactivate_owner="oracle_with_inactive_shortcut",
                icactiver_offset="v1_bug", hyp_dir_fast_path=False,
                tdir_forced_without_cap=False, v2_sgi_cpuid_match=False,
            ),
            bug="K2",
        ),
        Variant(
            "no-spi-tracking",
            "merged without active_spis and the broadcast: a DIR of an SPI active in another "
            "vCPU's LR runs untrapped and the deactivation is lost",
            replace(_MERGED, active_spis_accounting=False, bcst_kick="off"),
            bug="lost-deactivation",
            shows="deactivation-lost/DIR-untrapped:no-broadcast",
        ),
        Variant(
            "pre-series",
            "before the LR-overflow work: active first in the ap_list, no EOIcount replay, "
            "no DIR trapping, UIE/EOI maintenance only",
            replace(
                _MERGED, eoicount_replay=False, active_spis_accounting=False, bcst_kick="off",
                tdir_forced_without_cap=False, dir_trapping=False, hyp_dir_fast_path=False,
                sort_pending_first=False, undeliverable_to_tail=False, group_enable_mis=False,
                overflow_mis="uie_only", lpi_active_drop=False,
                notify_requires_deactivated=False, flush_skips_empty_ap_list=True,
            ),
            bug="overflow",
            shows="deactivation-lost/DIR-untrapped:no-broadcast",
        ),
        Variant(
            "merged+fix-halt-wait",
            "proposed fix for F1: vgic_mmio_change_active waits for the vCPU holding the "
            "irq in an LR to fold it before changing the active state",
            replace(_MERGED, fix_change_active_waits_for_lr=True),
            bug="fix",
        ),
        Variant(
            "merged+fix-pseudo-lr-lock",
            "proposed fix for F2: vgic_v3_deactivate folds the pseudo-LR without dropping "
            "irq_lock after building it",
            replace(_MERGED, fix_deactivate_fold_locked=True),
            bug="fix",
        ),
        Variant(
            "merged+fix-eoi-notify",
            "proposed fix for F3: vgic_v3_fold_lr calls kvm_notify_acked_irq on the EOI "
            "condition alone, not only for a deactivation KVM saw",
            replace(_MERGED, fix_notify_on_eoi=True),
            bug="fix",
        ),
        Variant(
            "merged+fix-irqfd-bcst",
            "proposed fix for F4: kvm_arch_set_irq_inatomic returns -EWOULDBLOCK for an SPI "
            "when the VM needs the active_spis broadcast, so irqfd_inject runs it in a kworker",
            replace(_MERGED, fix_inatomic_no_bcst=True),
            bug="fix",
        ),
        Variant(
            "merged+fix-bcst-wait",
            "proposed fix for F5: vgic_queue_irq_unlock counts the SPI and broadcasts "
            "KVM_REQ_IRQ_PENDING with KVM_REQUEST_WAIT on 0 -> 1 before queueing it",
            replace(_MERGED, fix_bcst_before_queue=True),
            bug="fix",
        ),
        Variant(
            "merged+fix-spi-count",
            "proposed fix for F6: active_spis counts SPIs on ap_lists (vgic_prune_ap_list "
            "decrements it, vgic_v3_fold_lr no longer does): no leak, no wrap",
            replace(_MERGED, fix_count_spis_on_ap_lists=True),
            bug="fix",
        ),
        Variant(
            "merged+fix-all",
            "the six proposed fixes (F1-F6) together",
            replace(_MERGED, fix_change_active_waits_for_lr=True,
                    fix_deactivate_fold_locked=True, fix_notify_on_eoi=True,
                    fix_inatomic_no_bcst=True, fix_bcst_before_queue=True,
                    fix_count_spis_on_ap_lists=True),
            bug="fix",
        ),
        Variant(
            "mutant-kick-only-target",
            "planted bug: the 0->1 transition of active_spis kicks only the target vCPU",
            replace(_MERGED, mutant_kick_only_target=True),
            bug="mutant",
            shows="deactivation-lost/DIR-untrapped:no-broadcast",
        ),
        Variant(
            "mutant-no-request-recheck",
            "planted bug: no request re-check after mode = IN_GUEST_MODE, so a broadcast "
            "that raced with entry is missed until the next exit",
            replace(_MERGED, mutant_no_request_recheck=True),
            bug="mutant",
            shows="deactivation-lost/DIR-untrapped:request-set",
        ),
        Variant(
            "mutant-dec-on-every-fold",
            "planted bug: active_spis is decremented on every fold of an active SPI",
            replace(_MERGED, mutant_dec_on_every_fold=True),
            bug="mutant",
            shows="active-spis-undercount",
        ),
        Variant(
            "mutant-stale-tdir",
            "planted bug: TDIR is computed from an active_spis value read before the "
            "requests were checked",
            replace(_MERGED, mutant_stale_tdir=True),
            bug="mutant",
            shows="deactivation-lost/DIR-untrapped:after-broadcast",
        ),
    )
}

DEFAULT_VARIANT = "merged"

HISTORY = ("pre-series", "v1-posted", "v2-posted", "v4-applied", "merged")
"""The kernel versions in the order they were written (bisection walks them); the rest of
the catalogue is what-ifs (no-spi-tracking), planted mutants and proposed fixes."""

FIXES = {"F1": "merged+fix-halt-wait", "F2": "merged+fix-pseudo-lr-lock",
         "F3": "merged+fix-eoi-notify", "F4": "merged+fix-irqfd-bcst",
         "F5": "merged+fix-bcst-wait", "F6": "merged+fix-spi-count"}
"""docs/findings.md entry -> the variant carrying its proposed fix (``merged+fix-all``
carries all six)."""
FIX_ALL = "merged+fix-all"


def get_variant(name: str) -> Variant:
    """The variant called ``name``; a UsageError listing the known names otherwise."""
    try:
        return VARIANTS[name]
    except KeyError:
        known = ", ".join(VARIANTS)
        raise UsageError(f"--variant: expected one of {known}, got {name!r}") from None


def differences(variant: Variant, base: str = DEFAULT_VARIANT) -> dict[str, tuple[object, object]]:
    """Switches whose value differs from ``base``: name -> (base value, variant value)."""
    ref = VARIANTS[base].switches
    out: dict[str, tuple[object, object]] = {}
    for f in fields(KernelSwitches):
        a, b = getattr(ref, f.name), getattr(variant.switches, f.name)
        if a != b:
            out[f.name] = (a, b)
    return out
