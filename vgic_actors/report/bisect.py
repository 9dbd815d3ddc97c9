"""Which version introduced a finding, and whether its fix removes it.

`bisect` runs the finding's scenario on every version of the catalogue's history
(kvm/variants.py ``HISTORY``: pre-series, v1-posted, v2-posted, v4-applied, merged), in
order. On each it first replays the finding's schedule (`reference`: its choice log as
the finding's own run takes it): when the replay fits the run exactly (the same
enabled-set size at every decision, every value in range, the log consumed) the
schedule still applies and its verdict is the version's. When it diverges, the schedule means
nothing there, so a short bounded sweep of the same scenario (``sweep`` seeds under each
of random walk and PCT depths 2 and 3, under the finding's timing) decides. A version
shows the finding when a run has its full signature (`Signature.same_finding`). The
first version that shows it is reported with its catalogue story, which names the
commit or patch. `check_fix` runs the same on a fix variant, and `explore_fix` proves
the scenario clean on it within a deviation bound.
"""

from __future__ import annotations

from dataclasses import dataclass

from vgic_actors.kvm.variants import FIX_ALL, FIXES, HISTORY, VARIANTS
from vgic_actors.report.finding import Case
from vgic_actors.runtime import ChoiceLog, Replay, timing_model
from vgic_actors.scenario.runner import run_once, with_horizon
from vgic_actors.soak.explore import explore, schedule_as_run

SWEEP_STRATEGIES = ("random", "pct:2", "pct:3")


@dataclass(frozen=True)
class VersionResult:
    """One version's verdict on the finding: ``how`` is ``replay`` (the schedule applied)
    or ``sweep`` (it diverged: ``hits`` of ``runs`` sweep runs had the signature)."""

    variant: str
    shows: bool
    how: str
    hits: int
    runs: int
    note: str = ""

    def describe(self) -> str:
        """``shows it (same schedule)``, ``clean (sweep: 0/36)``..."""
        verdict = "shows it" if self.shows else "clean"
        if self.how == "replay":
            return f"{verdict} (same schedule)"
        return f"{verdict} (schedule diverged; sweep: {self.hits}/{self.runs} runs)"


@dataclass(frozen=True)
class Bisection:
    """Every version's verdict, in history order, and the first that shows it."""

    versions: list[VersionResult]

    @property
    def first(self) -> VersionResult | None:
        """The first version (in history order) that shows the finding."""
        return next((v for v in self.versions if v.shows), None)

    @property
    def fixed_in(self) -> str:
        """The first version after the first one showing it from which every later version
        is clean ("" when the newest version still shows it, or none ever did)."""
        shows = [v.shows for v in self.versions]
        if True not in shows or shows[-1]:
            return ""
        last = max(i for i, s in enumerate(shows) if s)
        return self.versions[last + 1].variant

    @property
    def introduced_by(self) -> str:
        """The first version and its catalogue story (the commit or patch)."""
        first = self.first
        if first is None:
            return "not shown by any version of the catalogue"
        return f"{first.variant}: {VARIANTS[first.variant].story}"


def reference(case: Case) -> ChoiceLog:
    """The finding's schedule as its own run takes it (`schedule_as_run`)."""
    return schedule_as_run(case.scenario, case.recorded)


def judge(case: Case, variant: str, *, sweep: int,
          schedule: ChoiceLog | None = None) -> VersionResult:
    """The finding's verdict on ``variant``: replay ``schedule`` (default: `reference`)
    first, a bounded sweep if it diverges."""
    timing = timing_model(case.recorded.timing)
    replay = Replay(schedule if schedule is not None else reference(case))
    report = run_once(case.scenario, variant, case.seed, replay, timing=timing)
    fit = replay.report()
    if fit.exact:
        return VersionResult(variant, report.signature.same_finding(case.wanted), "replay",
                             int(report.signature.same_finding(case.wanted)), 1)
    hits = runs = 0
    for seed in range(sweep):
        for strategy in SWEEP_STRATEGIES:
            spec = with_horizon(strategy, case.scenario)
            got = run_once(case.scenario, variant, seed, spec, timing=timing).signature
            runs += 1
            hits += got.same_finding(case.wanted)
    return VersionResult(variant, hits > 0, "sweep", hits, runs, fit.describe())


def bisect(case: Case, *, sweep: int = 12, history: tuple[str, ...] = HISTORY) -> Bisection:
    """Judge the finding on every version in ``history``, in order."""
    schedule = reference(case)
    return Bisection([judge(case, v, sweep=sweep, schedule=schedule) for v in history])


def fix_for(case: Case, bisection: Bisection) -> str | None:
    """The fix variant of the docs/findings.md entry this finding is: the first on which
    the finding's schedule (or sweep) comes back clean, when merged shows it (None when
    merged does not, or no fix variant removes it)."""
    if not bisection.versions or bisection.versions[-1].variant != "merged" or \
            not bisection.versions[-1].shows:
        return None
    schedule = reference(case)
    for name in FIXES.values():
        if not judge(case, name, sweep=4, schedule=schedule).shows:
            return name
    return None


@dataclass(frozen=True)
class Explored:
    """One bounded exploration: ``verdict`` (clean, counterexample, nothing-proven), the
    ``schedules`` run, the counterexample's signature (``found``); around the finding's
    schedule also how many of its ``decisions`` the base kept (``followed``)."""

    verdict: str
    schedules: int
    found: str = ""
    followed: int = 0
    decisions: int = 0


@dataclass(frozen=True)
class FixCheck:
    """A fix variant on the finding's scenario: the same schedule; the sweep, run on
    merged and on the fix with the same seeds and strategies (``merged_hits`` runs of
    merged had the finding; ``fixed`` of those were free of it on the fix, ``sweep_hits``
    of all fix runs had it, ``sweep_other`` counts its other findings); bounded
    exploration of the scenario on the fix (``explore``, from the canonical order;
    ``explore_all`` on merged+fix-all when that found another finding; ``explore_merged``
    the same on merged: whether the bound reaches the finding at all), and around the
    finding's own schedule (``around`` on the fix at the bound, ``around_merged`` at
    bound 0: the finding's schedule itself, so the neighbourhood holds the finding)."""

    variant: str
    same_schedule: VersionResult
    merged_hits: int
    fixed: int
    sweep_hits: int
    sweep_runs: int
    sweep_other: dict[str, int]
    bound: int
    explore: Explored
    explore_merged: Explored
    around: Explored
    around_merged: Explored
    explore_all: Explored | None = None


def check_fix(case: Case, variant: str, *, sweep: int, bound: int,
              max_schedules: int) -> FixCheck:
    """Run ``variant`` on the finding's scenario: its schedule, ``sweep`` seeds under each
    sweep strategy (and merged on the same), and the bounded explorations of `FixCheck`
    (at most ``max_schedules`` schedules each)."""
    same = judge(case, variant, sweep=0)
    timing = timing_model(case.recorded.timing)
    merged_hits = fixed = hits = runs = 0
    other: dict[str, int] = {}
    for seed in range(sweep):
        for strategy in SWEEP_STRATEGIES:
            spec = with_horizon(strategy, case.scenario)
            base = run_once(case.scenario, "merged", seed, spec, timing=timing).signature
            got = run_once(case.scenario, variant, seed, spec, timing=timing).signature
            runs += 1
            if got.same_finding(case.wanted):
                hits += 1
            elif got:
                other[got.key] = other.get(got.key, 0) + 1
            if base.same_finding(case.wanted):
                merged_hits += 1
                fixed += not got.same_finding(case.wanted)
    own = _explore(case, variant, bound, max_schedules)
    combined = None
    if own.found and own.found != case.wanted.key:  # another finding: explore all fixes
        combined = _explore(case, FIX_ALL, bound, max_schedules)
    return FixCheck(variant, same, merged_hits, fixed, hits, runs,
                    dict(sorted(other.items())), bound, own,
                    _explore(case, "merged", bound, max_schedules),
                    _explore(case, variant, bound, max_schedules, around=True),
                    _explore(case, "merged", 0, max_schedules, around=True), combined)


def _explore(case: Case, variant: str, bound: int, max_schedules: int,
             around: bool = False) -> Explored:
    """Explore ``variant`` from the canonical order or, ``around``, from the finding's own
    schedule (its seed and timing)."""
    schedule = reference(case) if around else None
    found = (explore(case.scenario, variant, bound, max_runs=max_schedules, seed=case.seed,
                     around=schedule, timing=timing_model(case.recorded.timing))
             if schedule is not None
             else explore(case.scenario, variant, bound, max_runs=max_schedules))
    verdict = ("counterexample" if found.counterexample is not None
               else "clean" if found.exhausted else "nothing-proven")
    sig = found.counterexample.signature.key if found.counterexample is not None else ""
    return Explored(verdict, found.schedules, sig, found.followed,
                    len(schedule) if schedule is not None else 0)
