"""A finding's signature: one typed value, its text form, and the one comparison."""

from hypothesis import given
from hypothesis import strategies as st

from vgic_actors.checks.final import Violation
from vgic_actors.checks.signature import WHERE, Signature
from vgic_actors.scenario import load_scenario
from vgic_actors.scenario.runner import run_once

NAMES = st.sampled_from(["deactivation-lost", "livelock", "deadlock", "ap-list-consistency",
                         "active-spis-undercount", "crash"])
HOW = st.sampled_from(["", "EOIR", "DIR-trapped", "DIR-untrapped", "ICACTIVER"])
OUTCOME = st.sampled_from(["", "icactiver", "pseudo-lr", "not-queued", "v1-inactive"])


SITE = st.sampled_from(["", "undo:ICV_DIR_EL1", "undo:vgic_v3_deactivate<-handle_exit",
                        "undo:vgic_v3_fold_lr<-vgic_v3_fold_lr_state,"
                        "clear:vgic_v3_fold_lr<-vgic_v3_deactivate"])


@given(st.lists(NAMES, min_size=1, unique=True), HOW, OUTCOME, st.sampled_from(("", *WHERE)),
       SITE, st.booleans())
def test_the_text_form_reads_back_as_the_same_signature(names, how, outcome, where, site,
                                                        merged):
    """key then from_key gives back every field."""
    sig = Signature(invariants=tuple(sorted(names)), how=how, outcome=outcome if how else "",
                    where=where, site=site, merged_too=merged)
    assert Signature.from_key(sig.key) == sig


def test_same_finding_ignores_only_the_merged_rerun():
    """Every part but merged_too tells two findings apart."""
    base = Signature(invariants=("deactivation-lost",), how="DIR-trapped", outcome="pseudo-lr",
                     where="on-ap-list")
    assert base.same_finding(Signature.from_key(base.key + "@merged-too"))
    for other in ("deactivation-lost/DIR-untrapped/on-ap-list",
                  "deactivation-lost/DIR-trapped:icactiver/on-ap-list",
                  "deactivation-lost/DIR-trapped:pseudo-lr/in-lr",
                  "deactivation-lost/DIR-trapped",
                  "deactivation-lost/DIR-trapped:pseudo-lr/on-ap-list/undo:ICV_DIR_EL1",
                  "deactivation-lost+livelock/DIR-trapped:pseudo-lr/on-ap-list"):
        assert not base.same_finding(Signature.from_key(other)), other


def test_of_takes_the_first_lost_deactivation_and_the_core_invariants():
    """Expectations and guest checks are not part of a finding unless they are all of it."""
    lost = Violation(invariant="deactivation-lost", kind="safety", message="m", how="EOIR",
                     where="in-lr")
    sig = Signature.of([Violation(invariant="expectation", kind="expectation", message="e"),
                        lost])
    assert sig.key == "deactivation-lost/EOIR/in-lr"
    assert not Signature.of([])
    assert Signature.of([Violation(invariant="expectation", kind="expectation",
                                   message="e")]).key == "expectation"


def test_a_lost_deactivation_says_how_and_where_as_data():
    """asym_dir without SPI tracking: vCPU1's DIR is not trapped, no broadcast was ever due
    (the root cause, from broadcast_phase); the Active state stays."""
    scenario = load_scenario("scenarios/asym_dir.yaml")
    sigs = {run_once(scenario, "no-spi-tracking", seed, "pct:3").signature.key
            for seed in range(8)}
    assert "ordering/deactivation-lost/DIR-untrapped:no-broadcast/in-lr/undo:ICV_DIR_EL1" in sigs \
        or "ordering/deactivation-lost/DIR-untrapped:no-broadcast/on-ap-list/undo:ICV_DIR_EL1" \
        in sigs, sigs


def test_a_lost_deactivation_names_the_key_before_a_lost_resample():
    """F2 inside an F3 storm: the key's how/outcome/where/site are the deactivation's,
    whichever violation came first."""
    resample = Violation(invariant="resample-lost", kind="liveness", message="r",
                         how="vgic_v3_fold_lr", outcome="no-notify")
    stuck = Violation(invariant="stuck-active", kind="liveness", message="s",
                      how="DIR-trapped", outcome="pseudo-lr", where="on-ap-list",
                      site="undo:vgic_v3_fold_lr<-vgic_v3_fold_lr_state")
    sig = Signature.of([resample, stuck], "ordering")
    assert sig.key == ("ordering/resample-lost+stuck-active/DIR-trapped:pseudo-lr/on-ap-list/"
                       "undo:vgic_v3_fold_lr<-vgic_v3_fold_lr_state")


F1 = ("deactivation-lost/DIR-trapped:icactiver/on-ap-list/undo:vgic_v3_fold_lr"
      "<-vgic_v3_fold_lr_state,clear:vgic_mmio_change_active<-vgic_v3_deactivate")


def test_one_root_cause_whatever_else_the_run_broke():
    """F1 beside F4 (smp-call-in-atomic) is F1's root; another branch or site is not."""
    alone = Signature.from_key("ordering/" + F1)
    beside = Signature.from_key("ordering/" + F1.replace(
        "deactivation-lost/", "deactivation-lost+smp-call-in-atomic/"))
    assert alone.root and alone.root == beside.root and alone.key != beside.key
    assert Signature.from_key(F1.replace(":icactiver", ":pseudo-lr")).root != alone.root
    assert Signature.from_key(F1.replace("clear:vgic_mmio_change_active",
                                         "clear:vgic_v3_fold_lr")).root != alone.root
    assert Signature.from_key("deactivation-lost/DIR-untrapped:request-set/on-ap-list").root \
        == ""  # no loss site named: no root to compare
    # an untrapped DIR undone by the guest's own instruction: F6's wrapped count and
    # no-spi-tracking both lose it so, for different reasons: no root either
    assert not Signature.from_key("active-spis-undercount+deactivation-lost/DIR-untrapped:"
                                  "no-broadcast/on-ap-list/undo:ICV_DIR_EL1").root


def test_shows_matches_an_invariant_and_how_the_deactivation_was_made():
    sig = Signature.from_key("ordering/deactivation-lost+smp-call-in-atomic/"
                             "DIR-untrapped:request-set/on-ap-list/undo:ICV_DIR_EL1")
    assert sig.shows("deactivation-lost/DIR-untrapped:request-set")
    assert sig.shows("deactivation-lost/DIR-untrapped") and sig.shows("smp-call-in-atomic")
    assert not sig.shows("deactivation-lost/DIR-untrapped:after-broadcast")
    assert not sig.shows("deactivation-lost/DIR-trapped")
    assert not sig.shows("active-spis-undercount")


def test_an_untrapped_dir_lost_beside_an_undercount_shows_the_undercount_only():
    """F6's wrapped count (active-spis-undercount) leaves TDIR clear: the DIR it loses
    untrapped after a broadcast is not mutant-stale-tdir's bug showing."""
    f6 = Signature.from_key("ordering/active-spis-undercount+deactivation-lost/DIR-untrapped:"
                            "after-broadcast/on-ap-list/undo:ICV_DIR_EL1")
    assert not f6.shows("deactivation-lost/DIR-untrapped:after-broadcast")
    assert f6.shows("active-spis-undercount")
    trapped = Signature.from_key("active-spis-undercount+deactivation-lost/DIR-trapped:"
                                 "pseudo-lr/on-ap-list")
    assert trapped.shows("deactivation-lost/DIR-trapped")
