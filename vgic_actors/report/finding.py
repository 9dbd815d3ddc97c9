"""What a report is about: one finding, loaded from a soak findings folder or a run log.

A findings folder (docs/soak.md) holds ``finding.json``, ``scenario.yaml`` and
``choices.json``, and after ``vgic-actors shrink`` also ``shrunk.yaml`` and
``shrunk.choices.json``; the report works from the shrunk pair when there is one. A
run log (``run --log``) names its choice log in its ``RunStarted`` header (looked for
beside the log) and its scenario by name only, so the scenario file is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import msgspec

from vgic_actors.checks.signature import Signature
from vgic_actors.errors import InputError
from vgic_actors.logs.reader import LogReader
from vgic_actors.scenario import load_scenario
from vgic_actors.scenario.loader import Scenario
from vgic_actors.scenario.runner import RecordedRun, load_recorded, run_once


@dataclass(frozen=True)
class Case:
    """One finding to report: the scenario and schedule that show it, and what it is.

    ``scenario_file`` and ``choices_file`` are the files the replay command names;
    ``wanted`` is the finding's full signature (merged-too cleared: the bisection asks
    each version for the finding itself)."""

    folder: Path
    scenario: Scenario
    scenario_file: Path
    choices_file: Path
    recorded: RecordedRun
    wanted: Signature
    detail: str
    shrunk: bool
    needs: str = ""  # a timing-window finding: what had to be stretched (finding.json)

    @property
    def variant(self) -> str:
        """The variant the finding was recorded on."""
        return self.recorded.variant

    @property
    def seed(self) -> int:
        """The recorded seed."""
        return self.recorded.seed

    def replay_command(self) -> str:
        """The command that replays the finding exactly, from the repository root."""
        return (f"vgic-actors run {self.scenario_file} --variant {self.variant} --seed "
                f"{self.seed} --runs 1 --strategy replay:{self.choices_file}")


def load_case(path: str, scenario_file: str | None = None) -> Case:
    """A findings folder (with finding.json), or a run log (``.jsonl``) with the scenario
    file it ran (``scenario_file``); InputError else."""
    from vgic_actors.soak.campaign import Finding

    target = Path(path)
    if target.is_dir():
        if not (target / "finding.json").exists():
            raise InputError(str(target), "finding.json", "a soak finding folder "
                             "(findings/<signature>/ with finding.json) or a run log",
                             "no finding.json")
        try:
            finding = msgspec.json.decode((target / "finding.json").read_bytes(), type=Finding)
        except msgspec.ValidationError as exc:
            raise InputError(str(target / "finding.json"), "$", "a finding.json written by "
                             "soak", str(exc)) from None
        shrunk = (target / "shrunk.yaml").exists() and (target / "shrunk.choices.json").exists()
        scen = target / ("shrunk.yaml" if shrunk else "scenario.yaml")
        choices = target / ("shrunk.choices.json" if shrunk else "choices.json")
        return _case(target, scen, choices, Signature.from_key(finding.signature),
                     finding.detail, shrunk, finding.needs)
    if not target.is_file():
        raise InputError(str(target), "$", "a soak finding folder or a run log (.jsonl)",
                         "no such file or folder")
    header = LogReader(target).require_header()
    choices = target.parent / header.choices
    if not header.choices or not choices.is_file():
        raise InputError(str(target), "$.choices", "a run log with its choice log beside it "
                         "(run --log writes FILE.choices.json)", str(choices))
    if scenario_file is None:
        raise InputError(str(target), "$.scenario", f"--scenario FILE: the scenario "
                         f"{header.scenario!r} this log ran", "no --scenario")
    scen = Path(scenario_file)
    scenario = load_scenario(scen)
    recorded = load_recorded(choices)
    first = run_once(scenario, recorded.variant, recorded.seed, f"replay:{choices}")
    if not first.signature:
        raise InputError(str(target), "$", "the log of a run with a finding", "a clean run")
    return Case(target.parent, scenario, scen, choices, recorded,
                msgspec.structs.replace(first.signature, merged_too=False),
                first.violations[0].message, shrunk=False, needs=first.finding_class[1])


def _case(folder: Path, scen: Path, choices: Path, wanted: Signature, detail: str,
          shrunk: bool, needs: str) -> Case:
    for file in (scen, choices):
        if not file.exists():
            raise InputError(str(folder), file.name, "a replayable finding (scenario.yaml "
                             "and choices.json)", f"no {file.name}")
    return Case(folder, load_scenario(scen), scen, choices, load_recorded(choices),
                msgspec.structs.replace(wanted, merged_too=False), detail, shrunk, needs)
