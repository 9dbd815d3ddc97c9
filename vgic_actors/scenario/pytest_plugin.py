"""pytest plugin: collect scenario YAML files as tests, one item per listed variant.

Installed with the package (entry point ``pytest11``), inert until told where
scenarios live, in ``pyproject.toml`` / ``pytest.ini``::

    [tool.pytest.ini_options]
    vgic_scenarios = ["scenarios"]   # folders (or files) whose *.yaml are scenarios
    vgic_seeds = 8                   # seeds per variant (default: the scenario's own)

or on the command line: ``pytest --vgic-scenarios my/scenarios --vgic-seeds 20`` (only
the scenarios, unless test paths are given too), or one file and variant:
``pytest my/dec_on_fold.yaml::merged``. Each item runs the scenario under one variant over
the seeds and fails with the runner's summary, its first line (pytest's FAILED line) the
verdict expected and what was found; a malformed file fails its collection with the
one-line error. Every run is its own deterministic ``trio.run`` (async tests
of your own can use ``vgic_actors.runtime.arun`` under pytest-trio instead).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vgic_actors.errors import VgicActorsError


def pytest_addoption(parser: pytest.Parser) -> None:
    """--vgic-scenarios / --vgic-seeds and their ini equivalents."""
    group = parser.getgroup("vgic-actors")
    group.addoption("--vgic-scenarios", action="append", default=[], metavar="PATH",
                    help="collect *.yaml under PATH as vgic-actors scenarios (repeatable)")
    group.addoption("--vgic-seeds", type=int, default=None, metavar="N",
                    help="seeds per variant for collected scenarios")
    parser.addini("vgic_scenarios", "folders or files of vgic-actors scenarios", type="paths",
                  default=[])
    parser.addini("vgic_seeds", "seeds per variant for collected scenarios", default="")


def _roots(config: pytest.Config) -> list[Path]:
    given = [Path(p).resolve() for p in config.getoption("vgic_scenarios")]
    ini = [Path(p).resolve() for p in config.getini("vgic_scenarios")]
    return given + ini


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """A *.yaml file under a configured scenario root, or named on the command line
    (``pytest my/dec_on_fold.yaml::merged``), becomes a ScenarioCollector."""
    if file_path.suffix not in (".yaml", ".yml"):
        return None
    if parent.session.isinitpath(file_path):
        return ScenarioCollector.from_parent(parent, path=file_path)
    resolved = file_path.resolve()
    for root in _roots(parent.config):
        if resolved == root or root in resolved.parents:
            return ScenarioCollector.from_parent(parent, path=file_path)
    return None


def pytest_sessionstart(session: pytest.Session) -> None:
    """Make ``--vgic-scenarios`` folders collectable even outside ``testpaths``; given
    alone (no test paths on the command line), they are all that is collected."""
    config = session.config
    roots = config.getoption("vgic_scenarios")
    if roots and config.args_source is not pytest.Config.ArgsSource.ARGS:
        config.args[:] = roots  # not the current folder's (or testpaths') tests as well
        return
    for root in roots:
        if root not in config.args:
            config.args.append(root)


class ScenarioCollector(pytest.File):
    """One scenario file: an item per variant it lists a verdict for."""

    def collect(self) -> Iterator[pytest.Item]:
        from vgic_actors.scenario import load_scenario

        try:
            scenario = load_scenario(self.path)
        except VgicActorsError as exc:
            raise self.CollectError(exc.format_message()) from None
        for variant in scenario.variants():
            yield ScenarioItem.from_parent(self, name=variant, scenario=scenario, variant=variant)


class ScenarioItem(pytest.Item):
    """A scenario under one variant, over the configured seeds."""

    def __init__(self, *, scenario: Any, variant: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario, self.variant = scenario, variant

    def _seeds(self) -> int | None:
        cli = self.config.getoption("vgic_seeds")
        if cli is not None:
            return int(cli)
        ini = self.config.getini("vgic_seeds")
        return int(ini) if ini else None

    def runtest(self) -> None:
        """Run and judge; a verdict that does not hold fails with the summary."""
        from vgic_actors.scenario import run_scenario
        from vgic_actors.scenario.report import render

        report = run_scenario(self.scenario, variants=[self.variant], runs=self._seeds())
        if not report.ok:  # the first line is what pytest's FAILED summary line shows
            got = report.variants[0]
            raise ScenarioFailed(f"verdict {self.variant}: expected "
                                 f"{', '.join(got.expected) or 'pass'}, found "
                                 f"{', '.join(got.found) or 'nothing'}\n"
                                 + render(self.scenario, report))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str:
        """The runner's summary instead of a traceback."""
        if isinstance(excinfo.value, ScenarioFailed):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo, style=style))

    def reportinfo(self) -> tuple[Path, int, str]:
        """Where the item comes from, for pytest's report."""
        return self.path, 0, f"scenario {self.scenario.name} [{self.variant}]"


class ScenarioFailed(Exception):
    """A scenario's verdict did not hold."""
