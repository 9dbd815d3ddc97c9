"""A fix soak against the merged soak: what only the fix shows (report/render.py)."""

from vgic_actors.report.render import unexplained

F1 = "ordering/deactivation-lost/DIR-trapped:icactiver/on-ap-list"
F3 = "ordering/resample-lost/vgic_v3_fold_lr:no-notify"
F4 = "ordering/smp-call-in-atomic"


def test_a_run_with_two_known_bugs_at_once_is_nothing_new():
    both = "ordering/deactivation-lost+smp-call-in-atomic/DIR-trapped:icactiver/on-ap-list"
    assert unexplained({both, F4}, {F1, F4}) == []


def test_a_new_loss_site_or_invariant_is_new_and_timing_windows_are_not_judged():
    untrapped = "ordering/deactivation-lost/DIR-untrapped:request-set/on-ap-list"
    storm = "ordering/livelock"
    window = "timing-window/deactivation-lost/DIR-untrapped:request-set/on-ap-list"
    assert unexplained({untrapped, storm, window, F3}, {F1, F3}) == sorted([storm, untrapped])
    assert unexplained({F1}, set()) == [F1]
