"""The human summary of a scenario run (``vgic-actors run``'s stdout)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from vgic_actors.checks import INVARIANTS
from vgic_actors.scenario.loader import Scenario
from vgic_actors.scenario.runner import ScenarioReport, VariantReport


def _seeds(report: ScenarioReport) -> str:
    s = report.seeds
    return f"seed {s[0]}" if len(s) == 1 else f"seeds {s[0]}..{s[-1]}"


def _found(v: VariantReport) -> str:
    if not v.found:
        return f"pass ({len(v.runs)}/{len(v.runs)} runs clean)"
    counts: Counter[str] = Counter()
    for r in v.runs:
        counts.update(r.broken)
    return ", ".join(name if name.startswith("warning-") else
                     f"{name} in {counts[name]}/{len(v.runs)}" for name in v.found)


def render(scenario: Scenario, report: ScenarioReport) -> str:
    """Header, one line per variant, then the first finding of each variant explained."""
    lines = [f"{scenario.name} ({scenario.file})"]
    if scenario.description:
        lines.append("  " + scenario.description.splitlines()[0])
    lines.append(f"  {report.strategy}, {_seeds(report)}, "
                 f"{scenario.vm.nr_vcpus} vCPUs, {scenario.vm.nr_lr} LRs, "
                 f"GIC{scenario.vm.gic_model.name.lower()} model")
    lines.append("")
    width = max(len(v.variant) for v in report.variants)
    for v in report.variants:
        expected = "pass" if not v.expected else " + ".join(v.expected)
        mark = "ok  " if v.ok else "FAIL"
        lines.append(f"  {mark} {v.variant:<{width}}  found: {_found(v)}")
        lines.append(f"       {'':<{width}}  expected: {expected}")
    for v in report.variants:
        lines += _explain(scenario, v)
    lines += _warnings(scenario, report)
    lines.append("")
    lines.append("result: " + ("every verdict held" if report.ok else
                               "a verdict did not hold (exit status 1)"))
    return "\n".join(lines)


def _warnings(scenario: Scenario, report: ScenarioReport) -> list[str]:
    """Warnings the scenario does not judge (required or forbidden ones are part of the
    verdict), one line per warning over every variant that reported it."""
    judged = {w for v in report.variants for j in [scenario.judgement(v.variant)]
              for w in (*j.required, *j.forbidden)}
    runs: Counter[str] = Counter()
    variants: dict[str, list[str]] = {}
    first: dict[str, str] = {}
    for v in report.variants:
        for r in v.runs:
            for w in r.warnings:
                if w.invariant in judged:
                    continue
                runs[w.invariant] += 1
                first.setdefault(w.invariant, w.message)
                if v.variant not in variants.setdefault(w.invariant, []):
                    variants[w.invariant].append(v.variant)
    if not runs:
        return []
    lines = ["", "warnings (kernel behaviour as written, not violations; expect.warnings "
             "judges them):"]
    for name in sorted(runs):
        lines.append(f"  {name} on {', '.join(variants[name])} ({runs[name]} runs): "
                     f"{first[name]}")
    return lines


def _explain(scenario: Scenario, v: VariantReport) -> list[str]:
    run = next((r for r in v.runs if r.violations), None)
    if run is None:
        return []
    cls, needs = run.finding_class
    lines = ["", f"first finding on {v.variant} (seed {run.seed}, {run.outcome} after "
                 f"{run.steps} steps), class {cls}" + (f": needs {needs}" if needs else "")
             + ":"]
    shown: set[str] = set()
    for viol in run.violations:
        lines.append(f"  {viol.invariant}: {viol.message}")
        if viol.invariant not in shown:
            shown.add(viol.invariant)
            lines.append(f"    ({INVARIANTS[viol.invariant].meaning}; protects "
                         f"{INVARIANTS[viol.invariant].protects})")
        if len(lines) > 14:
            lines.append(f"  ... {len(run.violations)} violations in all (--json lists them)")
            break
    log = "run.jsonl"  # a replay's own log goes beside, never over, the file it replays
    if run.spec.startswith("replay:"):
        log = Path(run.spec[len("replay:"):]).name.removesuffix(".choices.json") + ".replay.jsonl"
    timing = "" if run.timing.mode == "realistic" else f" --timing {run.timing.mode}"
    lines.append(f"  replay: vgic-actors run {scenario.file} --variant {v.variant} "
                 f"--seed {run.seed} --runs 1 --strategy {run.spec}{timing} --log {log}")
    return lines
