"""vgic-actors report: the interleaving table, the bisection and the rendered report."""

from dataclasses import replace
from pathlib import Path

import pytest

from tests.browser import browser, dump_dom
from vgic_actors.cli import main
from vgic_actors.kvm.variants import HISTORY, VARIANTS, Variant
from vgic_actors.report import Options, bisect, build, load_case
from vgic_actors.report.examples import Example, make_finding
from vgic_actors.report.exposure import Sweep
from vgic_actors.report.render import render_markdown, render_text
from vgic_actors.report.table import MAX_ROWS

ROOT = Path(__file__).resolve().parents[2]
QUICK = Options(sweep=2, fix_sweep=2, bound=0, exposure=Sweep(4))

UNTRAPPED = ("ordering/deactivation-lost/DIR-untrapped:no-broadcast/on-ap-list"
             "/undo:ICV_DIR_EL1")


@pytest.fixture
def planted(tmp_path, monkeypatch):
    """The lost deactivation no-spi-tracking plants in asym_dir: vCPU1's DIR untrapped
    (written as ./planted, so the report's paths are short as in docs/reports)."""
    monkeypatch.chdir(tmp_path)
    return make_finding(Example("planted", str(ROOT / "scenarios/asym_dir.yaml"),
                                "no-spi-tracking", UNTRAPPED), Path("planted"))


def test_report_of_a_planted_finding_marks_the_untrapped_dir_on_the_deactivating_cpu(planted):
    """The loss row is vCPU1's ICV_DIR_EL1 on CPU1; the table has CPU0 and CPU1 columns."""
    rep = build(load_case(str(planted)), QUICK)
    assert rep.table.lanes == ["pcpu0", "pcpu1"]
    assert rep.table.loss is not None and rep.table.loss.lane == "pcpu1"
    assert "ICV_DIR_EL1 32, NOT trapped" in rep.table.loss.text
    assert any(r.lane == "pcpu0" and "ICV_IAR1_EL1 -> 32" in r.text for r in rep.table.rows)
    text = render_text(rep)
    assert f">>{rep.table.loss.step} " in text and "CPU0" in text and "CPU1" in text
    assert all(len(line) <= 80 for line in text.splitlines())
    assert "**" in render_markdown(rep)


def test_a_finding_merged_does_not_show_is_fixed_in_the_first_clean_version(planted):
    """The planted bug shows before the series and not after it: "fixed in" names the
    first clean version, and no merged+fix variant is claimed for it."""
    rep = build(load_case(str(planted)), QUICK)
    assert rep.bisection.first is not None and rep.bisection.first.variant == "pre-series"
    assert rep.bisection.fixed_in == "v1-posted"
    assert rep.fix is None
    assert "fixed in v1-posted" in render_text(rep)


def test_every_table_row_names_a_kernel_function_or_the_guest_register(planted):
    """Each row starts with a kernel function (name_with_underscores) or `guest vcpuN:`."""
    rep = build(load_case(str(planted)), QUICK)
    assert 0 < len(rep.table.rows) <= MAX_ROWS
    for row in rep.table.rows:
        head = row.text.split()[0]
        assert "_" in head or row.text.startswith("guest vcpu"), row.text


def test_bisection_of_a_finding_only_v4_applied_has_names_v4_applied(planted, monkeypatch):
    """Plant the bug in v4-applied alone (merged's switches + the kick-only-target mutant):
    every other version is clean on it, so the first to show it is v4-applied."""
    case = load_case(str(planted))
    # the mutant loses the DIR the same way: trapped never, the broadcast never sent
    planted_v4 = Variant("v4-applied", "planted for the test", replace(
        VARIANTS["no-spi-tracking"].switches), bug="K1")
    monkeypatch.setitem(VARIANTS, "v4-applied", planted_v4)
    monkeypatch.setitem(VARIANTS, "pre-series", replace(VARIANTS["merged"], name="pre-series"))
    monkeypatch.setitem(VARIANTS, "v1-posted", replace(VARIANTS["merged"], name="v1-posted"))
    result = bisect(case, sweep=2, history=HISTORY)
    assert [v.shows for v in result.versions] == [False, False, False, True, False]
    assert result.first is not None and result.first.variant == "v4-applied"
    assert result.introduced_by.startswith("v4-applied: planted for the test")


def test_bisection_of_the_k1_overflow_finding_starts_at_the_head_walk(tmp_path, monkeypatch):
    """late_mi_overflow (K1: the EOIcount walk from the ap_list head) shows on v2-posted and
    v4-applied, not before the series nor on merged: the first is v2-posted."""
    monkeypatch.chdir(ROOT)
    folder = make_finding(Example("K1", "scenarios/late_mi_overflow.yaml", "v4-applied",
                                  "ordering/deactivation-lost/EOIR/on-ap-list"
                                  "/undo:vgic_v3_fold_lr<-vgic_v3_fold_lr_state"),
                          tmp_path / "k1", seeds=40)
    result = bisect(load_case(str(folder)), sweep=3)
    verdicts = {v.variant: v.shows for v in result.versions}
    assert verdicts["v2-posted"] and verdicts["v4-applied"] and not verdicts["merged"]
    assert not verdicts["pre-series"]
    assert result.first is not None and result.first.variant == "v2-posted"


def test_report_needs_a_finding_folder_or_log(tmp_path, capsys):
    """Bad input is one `error:` line naming the file and what was expected, exit 2."""
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "finding.json" in err[0] and str(tmp_path) in err[0]


def test_report_from_a_run_log_needs_its_scenario_and_renders_html(tmp_path, monkeypatch, capsys):
    """A `run --log` log: without --scenario one error line (exit 2); with it the same
    report, and --format html is the logs html page with the report and table inside."""
    monkeypatch.chdir(tmp_path)
    scenario = str(ROOT / "scenarios/asym_dir.yaml")
    assert main(["run", scenario, "--variant", "no-spi-tracking", "--seed", "3", "--runs",
                 "1", "--log", "run.jsonl"]) == 0  # the verdict (lost) held
    capsys.readouterr()
    assert main(["report", "run.jsonl"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--scenario" in err[0] and "run.jsonl" in err[0]
    assert main(["report", "run.jsonl", "--scenario", scenario, "--sweep", "1", "--bound",
                 "0", "--format", "html", "-o", "r.html"]) == 0
    page = Path("r.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "ICV_DIR_EL1 not trapped" in page
    assert "<h2>Interleaving</h2><table>" in page and "<svg" in page
    if browser() is not None:  # as a browser renders it: the report above the log's page
        dom = dump_dom(tmp_path / "r.html", tmp_path / "profile")
        assert "<h1>ICV_DIR_EL1 not trapped (TDIR clear): SPI 32 stays Active</h1>" in dom
        assert "NOT trapped" in dom and "<b>" in dom and "<svg" in dom


def _table(folder: str):
    from vgic_actors.report.render import replay
    from vgic_actors.report.table import interleaving, studied_intid

    case = load_case(folder)
    first, events, _ = replay(case)
    intid = studied_intid([v.message for v in first.violations], events)
    return interleaving(events, intid, case.wanted.invariants)


def test_the_resampler_finding_marks_the_fold_of_the_eoied_lr(monkeypatch):
    """F3: the loss is the fold of SPI 35's EOIed LR with deactivated=0, on CPU0, after
    the guest's EOIR; the injection comes from the VMM's column."""
    monkeypatch.chdir(ROOT)
    table = _table("docs/reports/F3")
    assert table.intid == 35 and table.lanes == ["pcpu0", "vmm"]
    assert table.loss is not None and table.loss.lane == "pcpu0"
    assert "kvm_notify_acked_irq not called" in table.loss.mark
    assert table.loss.text.startswith("vgic_v3_fold_lr vcpu0: LR INVALID")
    before = [r for r in table.rows if r.step < table.loss.step]
    assert any("ICV_EOIR1_EL1 35" in r.text for r in before)


def test_the_atomic_broadcast_finding_marks_the_queueing_in_the_device_column(monkeypatch):
    """F4: the loss row is vgic_queue_irq_unlock's 0 -> 1 broadcast, run by the VMM/device
    actor (irqfd_wakeup under the eventfd lock)."""
    monkeypatch.chdir(ROOT)
    table = _table("docs/reports/F4")
    assert table.loss is not None and table.loss.lane == "vmm"
    assert "IRQs disabled" in table.loss.mark
    assert "kvm_make_all_cpus_request" in table.loss.text


def test_exposure_follows_the_host_gic_not_the_guest_model(monkeypatch):
    """F3 shows with a GICv3 or a GICv2 guest on a GICv3 host (vgic_v3_fold_lr's
    condition) and never on a GICv2 host (vgic_v2_fold_lr notifies on the EOI alone)."""
    from vgic_actors.report.exposure import exposure

    monkeypatch.chdir(ROOT)
    got = {e.label: e for e in exposure(load_case("docs/reports/F3"), Sweep(4))}
    assert got["GICv2 guest on a GICv3 host"].hits
    assert [e.hits > 0 for e in got.values() if e.as_run] == [True]
    v2 = got["GICv2 guest on a GICv2 host"]
    assert v2.runs == 6 and not v2.hits


def test_exposure_of_the_atomic_broadcast_follows_the_injection_path(monkeypatch):
    """F4 (kvm_make_all_cpus_request from irqfd_wakeup with IRQs off) shows whichever
    context writes the irqfd, since the eventfd's wait-queue lock is taken with IRQs off
    either way, and never when the same SPI comes by KVM_IRQ_LINE from the VMM's thread."""
    from vgic_actors.report.exposure import exposure

    monkeypatch.chdir(ROOT)
    got = {e.label: e for e in exposure(load_case("docs/reports/F4"), Sweep(4))}
    assert got["edge SPIs by an irqfd written from a thread"].hits
    line = got["edge SPIs by KVM_IRQ_LINE"]
    assert line.runs == 6 and not line.hits and not line.error
    assert "not expressible" in got["edge SPIs by a guest GICD_ISPENDR write"].describe()


def test_a_timing_window_report_says_what_was_stretched_and_shows_the_ipi_in_flight(
        monkeypatch):
    """A (docs/reports/A, adversarial timing): the class names the IPI delay; the table
    runs from the broadcast through the IPI to CPU1 in flight to CPU1's untrapped DIR."""
    monkeypatch.chdir(ROOT)
    rep = build(load_case("docs/reports/A"), QUICK)
    text = render_text(rep)
    assert "Class:       timing-window" in text and "ipi-delay" in text
    assert rep.table.loss is not None and rep.table.loss.lane == "pcpu1"
    before = [r.text for r in rep.table.rows if r.step < rep.table.loss.step]
    assert any("IPI to cpu1 in flight" in t for t in before)
    assert before[0].startswith("vgic_queue_irq_unlock") and "0->1" in before[0]
    assert all(len(line) <= 80 for line in text.splitlines())


def test_the_schedule_applies_where_the_points_match_and_diverges_where_a_fix_adds_one(
        monkeypatch):
    """F1's schedule replays exactly on merged and v4-applied (the same interleaving
    points) and diverges on merged+fix-halt-wait, whose wait loop adds a point: there
    the verdict comes from the sweep."""
    from vgic_actors.report.bisect import judge, reference

    monkeypatch.chdir(ROOT)
    case = load_case("docs/reports/F1")
    schedule = reference(case)
    for variant in ("merged", "v4-applied"):
        got = judge(case, variant, sweep=0, schedule=schedule)
        assert (got.how, got.shows) == ("replay", True), variant
    fixed = judge(case, "merged+fix-halt-wait", sweep=1, schedule=schedule)
    assert fixed.how == "sweep" and fixed.runs == 3 and not fixed.shows


def test_the_atomic_broadcast_table_shows_the_eventfd_lock_held_around_it(monkeypatch):
    """F4: the rows run from eventfd_write's spin_lock_irqsave of the wait-queue lock to its
    release, and the broadcast with its kicks lies in between."""
    monkeypatch.chdir(ROOT)
    table = _table("docs/reports/F4")
    texts = [r.text for r in table.rows]
    assert texts[0].startswith("spin_lock_irqsave:") and "(IRQs off)" in texts[0]
    assert texts[-1].startswith("spin_unlock_irqrestore:")
    assert table.loss is not None and table.loss in table.rows[1:-1]
    assert any(t.startswith("kvm_vcpu_kick") for t in texts[texts.index(table.loss.text):])
