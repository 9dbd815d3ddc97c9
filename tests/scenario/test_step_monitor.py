"""Safety invariants checked at every kernel event, not only at the end."""

from vgic_actors.checks.monitor import StepMonitor
from vgic_actors.scenario import load_scenario
from vgic_actors.scenario.runner import run_once


def test_the_monitor_sees_the_undercount_when_it_happens():
    """mutant-dec-on-every-fold drops active_spis to 0 while SPI 32 is still Active; the
    step monitor reports it with the step where it first held."""
    scenario = load_scenario("scenarios/dec_on_fold.yaml")
    report = run_once(scenario, "mutant-dec-on-every-fold", 0, "pct:3")
    under = [v for v in report.violations if v.invariant == "active-spis-undercount"]
    assert under and "first at step" not in under[0].message  # also true at the end
    monitor = StepMonitor()
    assert monitor.violations() == []  # nothing watched, nothing found


def test_a_transient_undercount_is_caught_by_the_monitor_only(monkeypatch):
    """An undercount that the end of the run no longer shows (the SPI deactivated later)
    is still reported, by the monitor, with its step."""
    scenario = load_scenario("scenarios/dec_on_fold.yaml")
    merged = run_once(scenario, "merged", 0, "pct:3")
    assert merged.violations == []
    from vgic_actors.checks import final

    calls = {"n": 0}
    real = final.undercount_violations

    def flaky(kvm):
        calls["n"] += 1
        if calls["n"] == 3:  # pretend the count was wrong at one moment mid-run
            return [final.violation("active-spis-undercount", "SPI 32 transiently")]
        return real(kvm)

    monkeypatch.setattr("vgic_actors.checks.monitor.undercount_violations", flaky)
    report = run_once(scenario, "merged", 0, "pct:3")
    assert [v.invariant for v in report.violations] == ["active-spis-undercount"]
    assert "first at step" in report.violations[0].message
    quiet = run_once(scenario, "merged", 0, "pct:3", monitor=False)
    assert quiet.violations == []
