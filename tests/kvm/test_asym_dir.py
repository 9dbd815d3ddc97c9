"""peer-tests.md A5 / S4: an SPI acknowledged on vCPU0 and deactivated by vCPU1 (EOImode 1).

Every interleaving here is chosen by the scheduler; the tests only pick seeds and
strategies and read the outcome.
"""

import io
import json

from vgic_actors.kvm.vm import VmConfig
from vgic_actors.runtime import Outcome, timing_class, timing_model

from .scenarios import asym_dir_guests, run_scenario

LOST = "vcpu0 pc9: ISACTIVER read of INTID 32: expected 0, got 1"


def test_no_spi_tracking_loses_the_deactivation_under_every_schedule():
    """no-spi-tracking: vCPU1's DIR runs untrapped, SPI 32 stays Active in vCPU0's LR."""
    for strategy in ("random", "pct"):
        for seed in range(25):
            out = run_scenario(VmConfig(variant="no-spi-tracking"), asym_dir_guests(),
                               seed=seed, strategy=strategy, k=150)
            assert out.result.outcome is Outcome.QUIESCENT
            assert out.failures == [LOST], (strategy, seed)


def test_merged_keeps_spi32_inactive_for_1000_pct_seeds_with_bounded_ipi_latency():
    """merged, IPIs landing within 8 ticks: the broadcast makes vCPU1 trap its DIR every time."""
    for seed in range(1000):
        out = run_scenario(VmConfig(variant="merged", ipi_latency=8), asym_dir_guests(),
                           seed=seed, strategy="pct", depth=3, k=150)
        assert out.result.outcome is Outcome.QUIESCENT, seed
        assert out.failures == [], seed
        assert not out.machine.kvm.dist.spis[0].active


def test_merged_active_spis_stays_set_after_an_edge_spi_is_deactivated():
    """Kernel as written: edge SPIs never decrement active_spis, so TDIR stays set VM-wide."""
    out = run_scenario(VmConfig(variant="merged", ipi_latency=8), asym_dir_guests(), seed=0)
    assert out.failures == []
    assert out.machine.kvm.dist.active_spis.peek() == 1


def _events(out_log):
    return [json.loads(line) for line in out_log.getvalue().decode().splitlines()]


def classify_lost_deactivation(events) -> str:
    """Which candidate window (docs/findings.md) a lost deactivation on merged went through.

    F1: vCPU1's DIR took the big-hammer ICACTIVER path; vCPU0 was outside guest mode (so
    kvm_arm_halt_guest did not wait for it) and folded Active back afterwards: either it
    aborted an entry it had flushed (the entry side) or it had published
    OUTSIDE_GUEST_MODE on its way out but not yet folded its LRs (the exit-side mirror).
    F2: vCPU1's DIR took the pseudo-LR path while vCPU0 re-populated the SPI into an
    LR between the pseudo-LR's computation and its fold (vCPU0 folds it Active again later).
    """
    dir_at, dir_ev = next((i, e) for i, e in enumerate(events) if e["ev"] == "DirEmulated")
    after = events[dir_at:]
    if dir_ev["outcome"] == "icactiver":
        kick = next(e for e in after if e["ev"] == "KickSent" and e["vcpu"] == 0)
        cleared = next(i for i, e in enumerate(after) if e["ev"] == "ActiveChanged")
        aborted = any(e["ev"] == "EntryAborted" and e["vcpu"] == 0 for e in after)
        refolded = any(e["ev"] == "LrFolded" and e["vcpu"] == 0 and e["intid"] == 32
                       and e["state"] == "ACTIVE" for e in after[cleared:])
        return "F1" if kick["how"] == "none" and (aborted or refolded) else "other"
    if dir_ev["outcome"] == "pseudo-lr":
        refolded = any(e["ev"] == "LrFolded" and e["vcpu"] == 0 and e["intid"] == 32
                       and e["state"] == "ACTIVE" and not e["pseudo"] for e in after)
        return "F2" if refolded else "other"
    return "other"


def test_merged_lost_deactivation_windows_are_found_by_random_walk():
    """Candidate findings F1 and F2 (docs/findings.md): with frequent exits, random walk finds
    merged losing the deactivation, and every loss goes through one of the two windows."""
    config = VmConfig(variant="merged", ipi_latency=8, timeslice=4)
    kinds = []
    for seed in range(150):
        log = io.BytesIO()
        out = run_scenario(config, asym_dir_guests(), seed=seed, strategy="random", log=log)
        if out.failures:
            assert out.failures == [LOST]
            kinds.append((seed, classify_lost_deactivation(_events(log))))
            # reachable with the default bounds and no stall event: an ordering bug
            assert timing_class(out.result.timing) == ("ordering", "")
    assert kinds, "random walk found no lost deactivation in 150 seeds"
    assert {k for _, k in kinds} == {"F1", "F2"}, kinds


def test_merged_loses_the_asymmetric_deactivation_only_with_a_late_ipi():
    """Finding A (docs/findings.md): under adversarial timing the broadcast's IPI may be
    held in flight; every lost deactivation needs such a delay and is classed
    timing-window, naming the late IPI."""
    hits = 0
    for seed in range(120):
        config = VmConfig(variant="merged", ipi_latency=8)
        out = run_scenario(config, asym_dir_guests(), seed=seed, strategy="random",
                           timing=timing_model("adversarial"))
        if out.failures:
            hits += 1
            cls, needs = timing_class(out.result.timing)
            assert cls == "timing-window" and "ipi-delay" in needs, needs
    assert hits


def test_kernel_events_tell_the_story_of_the_trapped_dir_on_merged():
    """The log names each kernel step: the queue with its broadcast, TDIR in vCPU1's HCR, the
    DIR emulation's outcome and the fold that deactivated SPI 32; events decode as Structs."""
    from vgic_actors.events import DirEmulated, HcrConfigured, IrqQueued, decode_lines

    log = io.BytesIO()
    out = run_scenario(VmConfig(variant="merged", ipi_latency=8), asym_dir_guests(), seed=3,
                       log=log)
    assert out.failures == []
    events = list(decode_lines(log.getvalue().splitlines()))
    queued = [e for e in events if isinstance(e, IrqQueued)]
    assert queued[0].intid == 32 and queued[0].vcpu == 0 and queued[0].bcst
    assert any(isinstance(e, HcrConfigured) and e.vcpu == 1 and e.tdir for e in events)
    dirs = [e for e in events if isinstance(e, DirEmulated)]
    assert len(dirs) == 1 and dirs[0].vcpu == 1 and dirs[0].intid == 32
    assert dirs[0].outcome in ("icactiver", "pseudo-lr") and dirs[0].owner == 0


def test_an_untrapped_dir_names_where_the_broadcast_stood():
    """broadcast_phase: the root cause of an untrapped DIR is read from the kernel's state
    at that moment (no broadcast due, unsent, in its loop, request set)."""
    from vgic_actors.kvm.vgic import broadcast_phase
    from vgic_actors.kvm.vm import build_kvm
    from vgic_actors.runtime import RandomWalk, Scheduler

    kvm = build_kvm(Scheduler(RandomWalk(0)), VmConfig(nr_vcpus=2))
    assert broadcast_phase(kvm, 1) == "no-broadcast"
    kvm.broadcasts_due = 1
    assert broadcast_phase(kvm, 1) == "bcst-unsent"
    kvm.broadcasts_started = 1
    assert broadcast_phase(kvm, 1) == "bcst-in-loop"
    kvm.vcpus[1].core.requests.bits |= 1 << 9  # KVM_REQ_IRQ_PENDING
    assert broadcast_phase(kvm, 1) == "request-set"
    kvm.vcpus[1].core.requests.bits = 0
    kvm.broadcasts_done = 1
    assert broadcast_phase(kvm, 1) == "after-broadcast"
