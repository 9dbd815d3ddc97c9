"""The benchmark's measurements do what they say (no timing assertions: `bench` owns numbers)."""

import itertools

import trio
import trio.lowlevel

from vgic_actors import bench as model_bench
from vgic_actors.logs.bench import bench_inspector
from vgic_actors.soak import bench as soak_bench


def test_the_handoff_baseline_makes_exactly_the_hops_asked_and_ends(monkeypatch):
    """Every hop wakes a task other than the one running; the run ends after ``hops``."""
    woken = []
    real = trio.lowlevel.reschedule

    def spy(task, *args):
        woken.append(id(task))
        real(task, *args)

    monkeypatch.setattr(trio.lowlevel, "reschedule", spy)
    hops, seconds = model_bench.measure_handoff(4, 300)
    assert hops == 300 and seconds > 0
    assert len(woken) == 1 + 299 + 3  # the first wake, 299 hand-offs, the last hop's goodbyes
    assert len(set(woken)) == 4
    assert all(a != b for a, b in itertools.pairwise(woken[:300]))  # never itself


def test_find_rates_count_own_findings_over_the_same_seeds():
    """no-spi-tracking is found on some of 24 generated runs; the rate is found / runs."""
    rate = soak_bench.find_rate("no-spi-tracking", "random", 24)
    assert 0 < rate.found <= 24 and rate.rate == round(rate.found / 24, 3)


def test_the_race_rates_use_the_same_seeds_for_every_strategy():
    """The mutant's lost deactivation on asym_dir.yaml shows within a few seeds."""
    rates = {r.strategy: r for r in model_bench.race_rates(6)}
    assert set(rates) == set(model_bench.RACE_STRATEGIES)
    assert rates["trio"].found > 0 and all(r.runs == 6 for r in rates.values())


def test_the_markdown_report_has_every_section():
    """A tiny --all renders each table (figures from real, short measurements)."""
    everything = model_bench.AllBench(
        tool_version="t", machine=model_bench.this_machine(),
        steps_random=model_bench.bench(2, 400, "random"),
        steps_pct=model_bench.bench(2, 400, "pct"), race=model_bench.race_rates(2),
        inspector=bench_inspector(2000),
        soak=soak_bench.SoakBench(
            profiles=[soak_bench.profile_cost("default", 3)], throughput=[],
            scaling_2_workers=0.0,
            find_rates=[soak_bench.find_rate("no-spi-tracking", "trio", 3)],
            first_findings=[]))
    text = model_bench.to_markdown(everything)
    for title in ("bare Trio hand-offs", "asymmetric-deactivation race", "Log inspector",
                  "Soak cost per profile", "alternating rounds", "Find rate per run",
                  "first finding"):
        assert title in text, title
    assert "| default | 3 |" in text and "| no-spi-tracking | " in text
