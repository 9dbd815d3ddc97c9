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
    rates = {r.strategy: r for r in model_bench.race_rates(6, (model_bench.RACE,))}
    assert set(rates) == set(model_bench.RACE_STRATEGIES)
    assert rates["trio"].found > 0 and all(r.runs == 6 for r in rates.values())
    assert rates["trio-batch"].found > 0


def test_the_deep_race_tells_the_two_trio_baselines_apart():
    """On late_mi_overflow.yaml the least-recently-run rule never loses v4-applied's
    deactivation while Trio's reversed batches do: the baselines are not the same."""
    rates = {r.strategy: r for r in model_bench.race_rates(12, (model_bench.DEEP_RACE,))}
    assert rates["trio"].found == 0
    assert rates["trio-batch"].found > 0


def test_the_markdown_report_has_every_section():
    """A tiny --all renders each table (figures from real, short measurements)."""
    everything = model_bench.AllBench(
        tool_version="t", machine=model_bench.this_machine(),
        steps_random=model_bench.bench(2, 400, "random"),
        steps_pct=model_bench.bench(2, 400, "pct"), race=model_bench.race_rates(1),
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


def _no_spi_tracking_runs(n):
    from vgic_actors.soak.profile import load_profile
    from vgic_actors.soak.worker import ScenarioSource, run_index

    source = ScenarioSource(profile=load_profile(None)[0])
    return source, [run_index(source, "no-spi-tracking", 1, "random", i) for i in range(n)]


def test_the_judge_keeps_the_variants_own_bug_and_drops_merged_ones():
    """A lost deactivation with no broadcast (merged always broadcasts) is the variant's
    own; a finding the soak marked merged-too, or one merged shows on a re-run, is not."""
    import msgspec

    source, recs = _no_spi_tracking_runs(24)
    judge = soak_bench.MergedJudge()
    verdicts = {r.index: judge.own(source, r) for r in recs}
    no_broadcast = [r.index for r in recs if "no-broadcast" in r.signature]
    assert no_broadcast and all(verdicts[i] for i in no_broadcast)
    assert not any(verdicts[r.index] for r in recs if r.signature.endswith("@merged-too"))
    assert not any(verdicts[r.index] for r in recs if not r.signature)
    for sig in judge.merged:  # merged's now: judged without a re-run (no scenario -1)
        rec = next(r for r in recs if r.signature)
        assert not judge.own(source, msgspec.structs.replace(rec, signature=sig,
                                                             scenario_seed=-1))


def test_the_judge_learns_merged_signatures_from_merged_campaigns():
    """Every signature of merged's reference runs is merged's."""
    from vgic_actors.soak.profile import load_profile
    from vgic_actors.soak.worker import ScenarioSource, run_index

    source = ScenarioSource(profile=load_profile(None)[0])
    judge = soak_bench.MergedJudge()
    judge.learn(source, range(1, 2), 20)
    sigs = {run_index(source, "merged", 1, "portfolio", i).signature for i in range(20)}
    assert judge.merged == sigs - {""}


def test_first_finding_stops_at_the_variants_own_bug():
    """no-spi-tracking's own bug within a short cap, and its signature is named."""
    f = soak_bench.first_finding("no-spi-tracking", "random", 1, 60.0)
    assert f.found == 1 and f.median_runs >= 1 and "deactivation-lost" in f.signature
    assert 0 < f.median_cpu_s < 60.0


def test_throughput_reports_cpu_time_per_run_in_the_workers_and_the_parent():
    """One worker: all CPU in this process; two: the workers' CPU comes back over the pipes
    and the parent's is apart."""
    one, two = soak_bench.throughput(1, 3), soak_bench.throughput(2, 4)
    assert (one.runs, two.runs) == (3, 4)
    assert one.cpu_ms_per_run > 0 and one.parent_ms_per_run == 0 and one.cores > 0
    assert two.cpu_ms_per_run > 0 and two.parent_ms_per_run > 0 and two.cores > 0


def test_the_judge_takes_one_root_cause_as_one_bug_and_asks_for_what_the_variant_shows():
    """A merged root learned beside another symptom is still merged's; a mutant's finding
    that does not show the catalogue's form of its bug (`Variant.shows`) is not its own,
    with no re-run needed (no scenario -1)."""
    import msgspec

    from vgic_actors.checks.signature import Signature
    from vgic_actors.kvm.variants import VARIANTS

    f1 = ("ordering/deactivation-lost/DIR-trapped:icactiver/on-ap-list/undo:vgic_v3_fold_lr"
          "<-vgic_v3_fold_lr_state,clear:vgic_mmio_change_active<-vgic_v3_deactivate")
    judge = soak_bench.MergedJudge()
    judge._merged(Signature.from_key(f1))
    source, recs = _no_spi_tracking_runs(1)
    rec = msgspec.structs.replace(recs[0], scenario_seed=-1, variant="mutant-stale-tdir",
                                  signature=f1.replace("lost/", "lost+smp-call-in-atomic/"))
    assert not judge.own(source, rec)
    wrong = msgspec.structs.replace(
        rec, signature="ordering/deactivation-lost/DIR-untrapped:request-set/on-ap-list/"
                       "undo:ICV_DIR_EL1")
    assert not judge.own(source, wrong)
    assert all(VARIANTS[v].shows for v in VARIANTS if VARIANTS[v].is_mutant)


def test_bench_soak_takes_variants_and_refuses_those_without_a_bug_of_their_own():
    """--variant narrows --soak to that variant's tables; merged and a fix are refused,
    and --variant without --soak too (exit 2, one line)."""
    import io

    from vgic_actors.cli import main

    for argv in (["bench", "--soak", "--variant", "merged"],
                 ["bench", "--soak", "--variant", "merged+fix-all"],
                 ["bench", "--variant", "mutant-stale-tdir"]):
        err = io.StringIO()
        assert main(argv, stdout=io.StringIO(), stderr=err) == 2, argv
        assert err.getvalue().count("\n") == 1 and "--variant" in err.getvalue(), argv
    soak = soak_bench.bench_soak(campaigns=1, cap=5.0, rate_runs=2,
                                 variants=["mutant-dec-on-every-fold"])
    assert not soak.throughput and not soak.profiles
    assert {r.variant for r in soak.find_rates} == {"mutant-dec-on-every-fold"}
    assert {f.variant for f in soak.first_findings} == {"mutant-dec-on-every-fold"}
