"""Root causes of lost deactivations (checks/loss.py): where the loss happened is part of
the signature, so two bugs are two findings and one bug from two scenarios is one."""

from collections import Counter

import pytest

from vgic_actors.checks.frames import parked_chain, render
from vgic_actors.checks.signature import Signature
from vgic_actors.kvm import vgic
from vgic_actors.scenario import load_scenario
from vgic_actors.scenario.loader import parse_scenario
from vgic_actors.scenario.runner import run_once
from vgic_actors.scenario.source import load_source

F1_SITE = ("undo:vgic_v3_fold_lr<-vgic_v3_fold_lr_state,"
           "clear:vgic_mmio_change_active<-vgic_v3_deactivate")
F2_SITE = "undo:vgic_v3_fold_lr<-vgic_v3_fold_lr_state,clear:vgic_v3_fold_lr<-vgic_v3_deactivate"

# pseudo_lr_window's race on other ground: three vCPUs, SPI 45 routed to vCPU1, the DIR on
# vCPU2, vCPU0 idle.
OTHER = """
name: pseudo_lr_window_3cpu
vm: {vcpus: 3, timeslice: 4}
guests:
  vcpu0: [{group_enable: true}, {pmr: 0xf8}]
  vcpu1:
    - group_enable: true
    - eoimode: 1
    - pmr: 0xf8
    - write: {reg: ISENABLER, intid: 45}
    - write: {reg: IROUTER, intid: 45, value: 1}
    - write: {reg: ISPENDR, intid: 45}
    - ack: 45
    - eoir: 45
    - store: {var: word, value: 45}
    - wait: {var: word, value: 0}
  vcpu2:
    - group_enable: true
    - eoimode: 1
    - pmr: 0xf8
    - wait: {var: word, value: 45}
    - dir: 45
    - store: {var: word, value: 0}
expect: {verdicts: {merged: [deactivation-lost]}}
"""


def lost(scenario, seeds, strategy="random"):
    """The signatures of the runs that lost a deactivation."""
    out: Counter[str] = Counter()
    for seed in seeds:
        sig = run_once(scenario, "merged", seed, strategy).signature
        if "deactivation-lost" in sig.invariants:
            out[sig.key] += 1
    return out


@pytest.fixture(scope="module")
def window():
    return lost(load_scenario("scenarios/pseudo_lr_window.yaml"), range(120))


def test_f1_and_f2_name_different_clearing_functions(window):
    """Both leave SPI 32 Active on vCPU0's ap_list and are undone by vCPU0's fold; F1 was
    cleared by the ICACTIVER big hammer, F2 by the pseudo-LR's fold."""
    sites = {Signature.from_key(k).site for k in window}
    assert sites == {F1_SITE, F2_SITE}, window


def test_one_bug_from_two_scenarios_is_one_signature(window):
    """The same two races on another scenario (other vCPUs, another SPI) give the same two
    keys, and nothing else."""
    other = lost(parse_scenario(load_source(OTHER, "other.yaml")), range(200))
    assert set(other) == set(window), (other, window)


def test_a_planted_loss_site_is_its_own_signature(monkeypatch, window):
    """A planted bug: the ICACTIVER big hammer of vgic_v3_deactivate does nothing. Its
    losses have F1's how, branch and place, but are dropped in the emulation instead of
    undone by a fold: another root cause, another signature."""
    real = vgic.vgic_mmio_change_active

    async def no_clear(kvm, requester, intid, active):
        if active:
            await real(kvm, requester, intid, active)

    monkeypatch.setattr(vgic, "vgic_mmio_change_active", no_clear)
    planted = lost(load_scenario("scenarios/pseudo_lr_window.yaml"), range(40))
    f1 = next(k for k in window if Signature.from_key(k).site == F1_SITE)
    hits = [k for k in planted if Signature.from_key(k).outcome == "icactiver"]
    assert hits and f1 not in planted
    assert {Signature.from_key(k).site for k in hits} == {
        "undo:vgic_v3_deactivate<-handle_exit"}, planted


def test_an_untrapped_dir_is_undone_by_the_guest_instruction():
    """Without SPI tracking vCPU1's DIR never traps: nothing in KVM touched the SPI."""
    scenario = load_scenario("scenarios/asym_dir.yaml")
    keys = {run_once(scenario, "no-spi-tracking", s, "pct:3").signature.key for s in range(4)}
    assert {Signature.from_key(k).site for k in keys if k} == {"undo:ICV_DIR_EL1"}, keys


def test_a_parked_coroutine_shows_its_kernel_functions():
    """frames.parked_chain reads a coroutine's await chain, kernel-named functions only."""

    async def vgic_fold_lr():  # named like the kernel function, but not in vgic_actors.kvm
        return None

    coro = vgic_fold_lr()
    try:
        assert parked_chain(coro) == []
        assert render(["a", "b", "c"]) == "a<-b"
    finally:
        coro.close()


def test_a_gicv2_host_names_the_vgic_v2_functions():
    """The model's fold and DIR emulation serve both hosts; on a GICv2 host the key names
    vgic-v2.c's functions (vgic_v2_fold_lr, vgic_v2_deactivate)."""
    from vgic_actors.checks.loss import Loss, LossTracker, Moment

    tracker = LossTracker(host_v2=True)
    tracker.losses[(None, 32)] = Loss(
        how="dir", step=1, actor="pcpu1",
        clear=Moment(2, "pcpu1", {"pcpu1": ["vgic_fold_lr", "vgic_v3_deactivate"]}),
        undo=Moment(3, "pcpu0", {"pcpu0": ["vgic_fold_lr", "vgic_fold_lr_state"]}))
    assert tracker.site(None, 32) == ("undo:vgic_v2_fold_lr<-vgic_v2_fold_lr_state,"
                                      "clear:vgic_v2_fold_lr<-vgic_v2_deactivate")
    assert "undone at step 3 by pcpu0" in tracker.describe(None, 32)


def test_the_message_names_every_cpu_at_the_clear_and_the_undo_and_is_deterministic():
    """F2's violation says where each CPU was at both moments; a re-run of the same seed
    says it byte for byte (the stacks are read from the scheduler's deterministic state)."""
    scenario = load_scenario("scenarios/pseudo_lr_window.yaml")
    seed = next(s for s in range(120)
                if run_once(scenario, "merged", s, "random").signature.site == F2_SITE)
    runs = [run_once(scenario, "merged", seed, "random") for _ in range(2)]
    texts = [next(v.message for v in r.violations if v.invariant == "deactivation-lost")
             for r in runs]
    assert texts[0] == texts[1]
    assert "cleared at step" in texts[0] and "undone at step" in texts[0]
    assert "in vgic_v3_fold_lr<-vgic_v3_deactivate" in texts[0]
    assert "in vgic_v3_fold_lr<-vgic_v3_fold_lr_state" in texts[0]
