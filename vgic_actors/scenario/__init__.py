"""The scenario tool: YAML scenarios loaded, validated, run per variant and seed, judged."""

from vgic_actors.scenario.loader import Scenario, load_scenario, load_scenario_text
from vgic_actors.scenario.runner import ScenarioReport, run_once, run_scenario

__all__ = [
    "Scenario",
    "ScenarioReport",
    "load_scenario",
    "load_scenario_text",
    "run_once",
    "run_scenario",
]
