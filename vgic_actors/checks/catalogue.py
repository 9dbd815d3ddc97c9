"""The named invariants: what each means and which rule it protects.

A scenario's verdict names these (``no-spi-tracking: [deactivation-lost]``), a
finding reports them, the soak de-duplicates by them. ``kind``: ``safety`` (a
state that must never exist), ``liveness`` (something that must eventually
happen, judged at the end of a run), ``runtime`` (the run itself could not
finish), ``guest`` (a guest program's own check), ``expectation`` (the
scenario's expect section), ``context`` (kernel code ran where the kernel's own
assertions forbid it, as lockdep or a WARN would report: runtime/context.py),
``warning`` (kernel behaviour as written but undesirable: reported, never a violation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["safety", "liveness", "runtime", "guest", "expectation", "context", "warning"]


@dataclass(frozen=True, slots=True)
class Invariant:
    """One named property."""

    name: str
    kind: Kind
    meaning: str
    protects: str


INVARIANTS: dict[str, Invariant] = {
    inv.name: inv
    for inv in (
        Invariant("deadlock", "runtime",
                  "no CPU could make progress while work was pending",
                  "every wait in the model has a waker (kvm_vcpu_kick, IPIs, lock release)"),
        Invariant("livelock", "runtime",
                  "the step budget ran out while work was pending",
                  "forward progress: no exit/re-entry or spin loop without end"),
        Invariant("budget-spent", "runtime",
                  "the step budget ran out while the guests were still making progress "
                  "(no livelock: the liveness monitor was not hot; raise run.max_steps)",
                  "a run is judged only once it has finished"),
        Invariant("guest-assertion", "guest",
                  "a guest program's own check failed (IAR value, register read, errno)",
                  "what the guest observes through the architecture"),
        Invariant("deactivation-lost", "liveness",
                  "an interrupt is still Active after the guest deactivated it",
                  "every guest deactivation takes effect (kernel-vgic 7: TDIR, "
                  "vgic_v3_deactivate, EOIcount replay)"),
        Invariant("ack-priority", "safety",
                  "a guest acknowledged an interrupt while one of strictly higher priority, "
                  "pending for its vCPU since before its last entry, was not taken "
                  "(checks/ack_oracle.py)",
                  "IAR returns the highest-priority pending interrupt; KVM puts the "
                  "highest-priority pending ones in the LRs (vgic_flush_lr_state's sort)"),
        Invariant("phantom-ack", "safety",
                  "the guest acknowledged an edge interrupt more times than anyone made it "
                  "pending (checks/delivery.py)",
                  "a pending state is created by an edge and consumed by one acknowledge"),
        Invariant("resample-lost", "liveness",
                  "a resampling irqfd's resamplefd was signalled fewer times than the guest "
                  "deactivated its level SPI (checks/resample.py)",
                  "irqfd_resampler_ack once per deactivation (kvm_notify_acked_irq from "
                  "the fold): VFIO INTx re-enables its line only on the resample"),
        Invariant("ap-list-consistency", "safety",
                  "irq->vcpu, ap_list membership and on_lr disagree, or an INTID is on "
                  "two ap_lists",
                  "the ap_list rules of kernel-vgic 1.5"),
        Invariant("active-spis-undercount", "safety",
                  "an SPI is Active on an ap_list while active_spis is 0 (GICv3 model with "
                  "SPI tracking): a DIR on another vCPU would not trap",
                  "the atomic_t active_spis accounting of kernel-vgic 9"),
        Invariant("phys-deactivation-once", "safety",
                  "a HW interrupt's physical deactivation happened other than once per "
                  "virtual deactivation",
                  "HW-mapped interrupts (the LR's HW bit, vgic_irq_set_phys_active)"),
        Invariant("smp-call-in-atomic", "context",
                  "smp_call_function_many (kvm_make_all_cpus_request's IPIs) was called with "
                  "IRQs disabled or from hard-IRQ context",
                  "kernel/smp.c: lockdep_assert_irqs_enabled() and WARN_ON_ONCE(!in_task()) "
                  "in smp_call_function_many_cond (it can deadlock on the csd lock)"),
        Invariant("sleep-in-atomic", "context",
                  "a function that may sleep (a mutex, kvm_vcpu_block) was called with "
                  "preemption or IRQs disabled",
                  "might_sleep(): \"BUG: sleeping function called from invalid context\""),
        Invariant("percpu-reentered", "context",
                  "per-CPU data (kvm_make_all_cpus_request's this_cpu cpu_kick_mask) was used "
                  "by code that an interrupt on the same CPU re-entered",
                  "per-CPU data is protected from preemption only (get_cpu), not from "
                  "interrupts, unless IRQs are off"),
        Invariant("inconsistent-lock-state", "context",
                  "a spinlock was taken in hard-IRQ context and elsewhere with IRQs enabled",
                  "lockdep's irq-safety rule ({IN-HARDIRQ-W} -> {HARDIRQ-ON-W})"),
        Invariant("irq-use-after-unlink", "safety",
                  "kernel code followed a pointer to a vgic_irq it holds without a reference "
                  "(last_lr_irq, prune's migration candidate) after the irq left its ap_list "
                  "or its last reference was put (LPIs), or put a freed irq",
                  "vgic_irq lifetime: ap_list links (list_del poisons them) and irq->refcount "
                  "(vgic_get_irq_ref / vgic_put_irq)"),
        Invariant("stuck-active", "liveness",
                  "a run cut short (deadlock, livelock, budget) ended with an interrupt the "
                  "guest deactivated still Active, after every vCPU had been through the "
                  "kernel since (checks/liveness.py)",
                  "every guest deactivation takes effect, also in a run that never settles"),
        Invariant("undelivered", "liveness",
                  "an interrupt was pending and deliverable to a vCPU whose guest waited for "
                  "one (idle, polling, PMR and group allowing it) and was never acknowledged "
                  "(checks/liveness.py)",
                  "a pending interrupt the CPU interface may signal reaches the guest: "
                  "vgic_flush_lr_state puts it in an LR, kvm_vgic_vcpu_pending_irq wakes WFI"),
        Invariant("level-unacked", "liveness",
                  "a level interrupt's line was held high, the interrupt enabled and the "
                  "guest idle and polling, and it was not acknowledged before the run ended "
                  "(checks/liveness.py)",
                  "a level interrupt stays pending while its line is high "
                  "(vgic_validate_injection, irq->line_level)"),
        Invariant("mi-storm", "liveness",
                  "a vCPU took a run of maintenance-interrupt exits with no guest operation "
                  "completing in between (checks/liveness.py: MI_STORM)",
                  "MI enables are only an optimisation (vgic_flush_lr_state's comment): "
                  "vgic_v3_configure_hcr must not enable an MI that holds at entry"),
        Invariant("resample-extra", "safety",
                  "a resampling irqfd's resamplefd was signalled more times than the guest "
                  "deactivated (or wrote EOIR/DIR for) its level SPI (checks/resample.py)",
                  "irqfd_resampler_ack once per deactivation: kvm_notify_acked_irq only from "
                  "the folds (vgic_v3_fold_lr, vgic_v2_fold_lr)"),
        Invariant("expectation", "expectation",
                  "the scenario's expected final state or counters did not hold",
                  "what the scenario's author wrote down"),
        Invariant("tdir-sticky", "warning",
                  "ICH_HCR_EL2.TDIR stays set at the end though no SPI is in flight",
                  "cost of active_spis being decremented only for level SPIs (findings W1)"),
    )
}
"""Every invariant by name."""


def known_names() -> str:
    """The invariant names, comma separated (for error messages)."""
    return ", ".join(INVARIANTS)
