"""The committed example reports (docs/reports/): one findings folder per docs/findings.md
kernel bug (F1-F6) and one timing window (A), made from a library scenario, and the
reports generated from it.

`make_finding` runs a scenario over seeds until a run has the wanted signature and writes
that run as a soak findings folder (finding.json, scenario.yaml, choices.json), which
``vgic-actors shrink`` then reduces. `regenerate` rewrites every ``report.txt`` and
``report.md`` under a folder from its findings (``vgic-actors report --examples DIR``);
tests/report checks the committed ones are what the command prints.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import msgspec

from vgic_actors.errors import InputError
from vgic_actors.runtime import timing_model
from vgic_actors.scenario import load_scenario
from vgic_actors.scenario.runner import RecordedRun, encode_recorded, run_once, with_horizon

STRATEGIES = ("random", "pct:2", "pct:3")


@dataclass(frozen=True)
class Example:
    """Finding ``name`` (docs/findings.md) as shown by ``scenario`` on ``variant``: the
    first run whose signature key is ``signature``."""

    name: str
    scenario: str
    variant: str
    signature: str
    timing: str = "realistic"  # the timing model it is found under (docs/soak.md)


EXAMPLES = (
    Example("F1", "scenarios/pseudo_lr_window.yaml", "merged",
            "ordering/deactivation-lost/DIR-trapped:icactiver/on-ap-list"
            "/undo:vgic_v3_fold_lr<-vgic_v3_fold_lr_state,"
            "clear:vgic_mmio_change_active<-vgic_v3_deactivate"),
    Example("F2", "scenarios/pseudo_lr_window.yaml", "merged",
            "ordering/deactivation-lost/DIR-trapped:pseudo-lr/on-ap-list"
            "/undo:vgic_v3_fold_lr<-vgic_v3_fold_lr_state,"
            "clear:vgic_v3_fold_lr<-vgic_v3_deactivate"),
    Example("F3", "scenarios/irqfd_resample.yaml", "merged",
            "ordering/resample-lost/vgic_v3_fold_lr:no-notify"),
    Example("F4", "scenarios/irqfd_broadcast_atomic.yaml", "merged",
            "ordering/smp-call-in-atomic"),
    Example("F5", "scenarios/broadcast_after_publish.yaml", "merged",
            "ordering/deactivation-lost/DIR-untrapped:flushed-before-bcst/on-ap-list"
            "/undo:ICV_DIR_EL1"),
    Example("F6", "scenarios/active_spis_wrap.yaml", "merged",
            "ordering/active-spis-undercount+deactivation-lost/DIR-untrapped:no-broadcast"
            "/on-ap-list/undo:ICV_DIR_EL1"),
    Example("A", "scenarios/asym_dir.yaml", "merged",
            "timing-window/deactivation-lost/DIR-untrapped:request-set/on-ap-list"
            "/undo:ICV_DIR_EL1",
            timing="adversarial"),
)


def make_finding(example: Example, out: Path, *, seeds: int = 200) -> Path:
    """Write the first run of ``example`` with its signature as a findings folder."""
    from vgic_actors.soak.campaign import Finding

    scenario = load_scenario(example.scenario)
    for seed in range(seeds):
        for i, strategy in enumerate(STRATEGIES):
            spec = with_horizon(strategy, scenario)
            report = run_once(scenario, example.variant, seed, spec,
                              timing=timing_model(example.timing))
            if report.signature.key != example.signature:
                continue
            out.mkdir(parents=True, exist_ok=True)
            text = Path(example.scenario).read_text(encoding="utf-8")
            (out / "scenario.yaml").write_text(text, encoding="utf-8")
            (out / "choices.json").write_bytes(encode_recorded(RecordedRun(
                scenario=scenario.name, digest=scenario.digest, variant=example.variant,
                seed=seed, strategy="replay", choices=report.choices,
                timing=report.timing.mode)))
            finding = Finding(
                signature=report.signature.key, violations=sorted(report.broken),
                detail=report.violations[0].message, index=seed * len(STRATEGIES) + i,
                scenario_seed=seed, strategy=spec, variant=example.variant,
                steps=report.steps, timing=report.timing.mode,
                needs=report.finding_class[1])
            (out / "finding.json").write_bytes(
                msgspec.json.format(msgspec.json.encode(finding)) + b"\n")
            return out
    raise InputError(example.scenario, "$", f"a run with {example.signature} within "
                     f"{seeds} seeds", "none")


FORMATS = (("text", "report.txt"), ("markdown", "report.md"))
"""The committed renderings of each example, and their file names."""


def example_texts(folder: Path) -> dict[str, str]:
    """Each committed format of the report on ``folder``, with the default options (one
    build for all formats). Paths in the report are as given, so run it from the
    repository root with a relative folder."""
    from vgic_actors.report.finding import load_case
    from vgic_actors.report.render import RENDERERS, build

    report = build(load_case(str(folder)))
    return {fmt: RENDERERS[fmt](report) for fmt, _ in FORMATS}


def regenerate(folder: Path, render: Callable[[Path], dict[str, str]]) -> list[Path]:
    """Rewrite ``report.txt`` and ``report.md`` in every findings folder under ``folder``
    (``render(finding_folder)`` gives each format's text); returns the files written."""
    written = []
    for finding in sorted(p.parent for p in folder.glob("*/finding.json")):
        texts = render(finding)
        for fmt, name in FORMATS:
            path = finding / name
            path.write_text(texts[fmt], encoding="utf-8")
            written.append(path)
    if not written:
        raise InputError(str(folder), "*/finding.json", "a folder of findings folders",
                         "none")
    return written
