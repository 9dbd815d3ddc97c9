"""The guest entry's cost (Scheduler.world_switch): an IPI already in flight, or a broadcast
running on another CPU, lands before the entering vCPU's first guest instruction, for at
most TimingModel.world_switch steps; with nothing in flight the entry costs nothing."""

import io
import json

from vgic_actors.runtime.context import DEFAULT_WORLD_SWITCH
from vgic_actors.scenario import load_scenario
from vgic_actors.scenario.runner import run_once

SCENARIOS = ("scenarios/broadcast_after_publish.yaml", "scenarios/asym_dir.yaml",
             "scenarios/pseudo_lr_window.yaml")


def _events(scenario, seed):
    log = io.BytesIO()
    run_once(load_scenario(scenario), "merged", seed, "random", log=log)
    return [json.loads(line) for line in log.getvalue().decode().splitlines()]


def _first_instructions(events):
    """(entry step, vCPU, IPIs in flight at the entry, step of the first guest instruction)."""
    in_flight: dict[int, int] = {}  # msg -> step it was sent
    landed: dict[int, int] = {}
    waiting: dict[int, tuple[int, set[int]]] = {}
    out = []
    for e in events:
        ev, step = e["ev"], e.get("step", 0)
        if ev == "MessageSent" and e["kind"] == "ipi":
            in_flight[e["msg"]] = step
        elif ev == "MessageDelivered" and e["msg"] in in_flight:
            del in_flight[e["msg"]]
            landed[e["msg"]] = step
        elif ev == "GuestEntered":
            waiting[e["vcpu"]] = (step, set(in_flight))
        elif ev == "ActorStepped" and ".pc" in e["label"]:
            vcpu = int(e["label"].split(".")[0][4:])
            if vcpu in waiting:
                entered, pending = waiting.pop(vcpu)
                out.append((entered, vcpu, {m: landed.get(m) for m in pending}, step))
    return out


def test_an_ipi_in_flight_at_entry_lands_before_the_first_guest_instruction():
    held = 0
    for scenario in SCENARIOS:
        for seed in range(12):
            for entered, vcpu, pending, first in _first_instructions(_events(scenario, seed)):
                if not pending:
                    continue
                held += 1
                waited_out = first >= entered + DEFAULT_WORLD_SWITCH
                for msg, at in pending.items():
                    assert (at is not None and at < first) or waited_out, (
                        scenario, seed, vcpu, entered, msg, at, first)
    assert held, "no entry found an IPI in flight: the property was never exercised"


def test_an_entry_with_nothing_in_flight_is_not_held():
    """Entries with no IPI in flight and no broadcast running reach the guest within the
    few steps of the entry path itself, so short time slices stay short."""
    quick = 0
    for seed in range(6):
        for entered, _vcpu, pending, first in _first_instructions(
                _events("scenarios/asym_dir.yaml", seed)):
            if not pending and first - entered < DEFAULT_WORLD_SWITCH // 2:
                quick += 1
    assert quick
