"""The vgic_irq selftest library in every mode, and what it needs: the routing-pin switch
(A3's negative control), `for` in value lists, `reset_stats`, and request names in events."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from vgic_actors.errors import InputError
from vgic_actors.events import RequestMade, decode_lines
from vgic_actors.guest.host import (
    Host,
    InjectEdge,
    IrqfdSignal,
    SetGsiRouting,
    SetLevel,
    SetLevelInfo,
    WriteIsactiver,
    WriteIspendr,
)
from vgic_actors.logs.describe import describe
from vgic_actors.scenario import load_scenario, load_scenario_text, run_once

ROOT = Path(__file__).resolve().parents[2]
BAD_INTIDS = [64, 1020, 1024, 1120, 5120, 0xFFFFFFFF]  # test_injection_failure's list


def load(text: str):
    return load_scenario_text(text, "t.yaml")


def host_ops(name: str) -> list[Host]:
    ops = load_scenario(ROOT / f"scenarios/selftest_vgic_{name}.yaml").guests[0].ops
    return [op for op in ops if isinstance(op, Host)]


# --- the library: one file per test_vgic mode, every method, every test -------------------

EDGE = {InjectEdge: "line", IrqfdSignal: "irqfd", WriteIspendr: "ispendr"}
LEVEL = {SetLevel: "line", SetLevelInfo: "level_info", IrqfdSignal: "irqfd",
         WriteIspendr: "ispendr"}


@pytest.mark.parametrize(("mode", "methods"), [
    ("edge", EDGE), ("edge_split", EDGE), ("level", LEVEL), ("level_split", LEVEL)])
def test_each_mode_runs_every_method_in_the_selftest_order(mode, methods):
    """Each method's first use comes in the selftest's table order, and restore_active last."""
    hosts = host_ops(mode)
    first = {}
    for n, h in enumerate(hosts):
        kind = type(h.action)
        if kind in methods and kind not in first and not (kind is SetLevel and not h.action.level):
            first[kind] = n
    assert list(first) == list(methods)
    last_inject = max(n for n, h in enumerate(hosts) if type(h.action) in methods)
    restore = [n for n, h in enumerate(hosts) if isinstance(h.action, WriteIsactiver)]
    assert len(restore) == 16 + 16 + 31 and min(restore) > last_inject


@pytest.mark.parametrize("mode", ["edge", "edge_split", "level", "level_split"])
def test_each_mode_tries_every_bad_intid_with_each_method_that_can_express_it(mode):
    """KVM_IRQ_LINE: EINVAL for each but 0xffffffff (beyond its field); routing: EINVAL from
    pin 988 on; LEVEL_INFO (level): EINVAL above 1023, success up to it."""
    hosts = host_ops(mode)
    line = InjectEdge if mode.startswith("edge") else SetLevel
    refused = {h.action.intid for h in hosts
               if isinstance(h.action, line) and h.expect_errno == 22}
    assert refused == set(BAD_INTIDS[:-1])
    routes = {h.action.entries[0].pin + 32: h.expect_errno for h in hosts
              if isinstance(h.action, SetGsiRouting) and len(h.action.entries) == 1
              and h.action.entries[0].pin + 32 in BAD_INTIDS}
    assert routes == {64: 0, 1020: 22, 1024: 22, 1120: 22, 5120: 22, 0xFFFFFFFF: 22}
    if mode.startswith("level"):
        info = {h.action.intid: h.expect_errno for h in hosts
                if isinstance(h.action, SetLevelInfo) and h.action.intid in BAD_INTIDS}
        assert info == {64: 0, 1020: 0, 1024: 22, 1120: 22, 5120: 22, 0xFFFFFFFF: 22}


def test_the_old_one_mode_files_are_gone():
    """Preemption and injection failure run inside each mode, not as files of their own."""
    names = {p.name for p in (ROOT / "scenarios").glob("selftest_*.yaml")}
    assert not {n for n in names if n.startswith(("selftest_inject_", "selftest_preemption_"))}
    assert {f"selftest_vgic_{m}.yaml" for m in ("edge", "edge_split", "level",
                                                 "level_split")} <= names


# --- item 1: the routing-pin switch --------------------------------------------------------

PIN = """vm: {vcpus: 1}
guests:
  vcpu0:
    - host: {do: set_gsi_routing, entries: [{gsi: 0, pin: 987}]}
    - host: {do: set_gsi_routing, entries: [{gsi: 0, pin: 988}], expect_errno: 22}
    - host: {do: irqfd_assign, gsi: 988, eventfd: 1}
    - host: {do: irqfd_signal, eventfd: 1}
    - iar: 1023
"""


class TestRoutingPinSwitch:
    def test_merged_refuses_pin_988_and_nothing_is_injected(self):
        assert run_once(load(PIN), "merged", 0, "pct:3").broken == set()

    def test_off_by_one_accepts_pin_988_and_the_errno_check_fails(self):
        report = run_once(load(PIN + "kernel: {routing_pin_check: false}\n"), "merged", 0,
                          "pct:3")
        assert report.broken == {"guest-assertion"}
        assert "errno 0, expected 22" in report.violations[0].message

    def test_the_off_by_one_still_refuses_pin_989(self):
        text = PIN.replace("pin: 988", "pin: 989") + "kernel: {routing_pin_check: false}\n"
        assert run_once(load(text), "merged", 0, "pct:3").broken == set()


# --- `for` inside an operation's lists -----------------------------------------------------


class TestForInValueLists:
    def test_a_for_item_expands_to_its_values(self):
        sc = load("vm: {vcpus: 1}\nguests:\n  vcpu0:\n    - for: {var: c, in: [1], do: [{host: "
                  "{do: set_gsi_routing, entries: [{gsi: 9, pin: 9}, {for: {var: g, from: $c,"
                  " to: 3, do: [{gsi: $g, pin: $g * 2}]}}]}}]}\n")
        (op,) = sc.guests[0].ops
        assert [(e.gsi, e.pin) for e in op.action.entries] == [(9, 9), (1, 2), (2, 4), (3, 6)]

    def test_a_malformed_for_item_names_its_path(self):
        with pytest.raises(InputError) as info:
            load("vm: {vcpus: 1}\nguests:\n  vcpu0:\n    - host: {do: set_gsi_routing, "
                 "entries: [{for: {var: g, from: 0, do: [{gsi: $g}]}}]}\n")
        assert "$.guests.vcpu0[0].host.entries[0].for" in str(info.value)
        assert "either 'in: [values]' or both 'from' and 'to'" in str(info.value)

    def test_an_unbound_name_inside_a_for_item_is_reported(self):
        with pytest.raises(InputError) as info:
            load("vm: {vcpus: 1}\nguests:\n  vcpu0:\n    - host: {do: set_gsi_routing, "
                 "entries: [{for: {var: g, in: [0], do: [{gsi: $h, pin: 0}]}}]}\n")
        assert "h in '$h'" in str(info.value)


# --- reset_stats -----------------------------------------------------------------------------

ONCE_OPS = [  # one SPI, injected and handled once
            "group_enable: true", "pmr: 0xf8", "write: {reg: ISENABLER, intid: 32}",
            "host: {do: inject_edge, intid: 32}", "unmask:", "wfi_until: 1"]


def program(ops: list[str], handler: str = "eoi", tail: str = ""):
    """A one-vCPU scenario running ``ops`` with ``handler``, then ``tail`` (top-level keys)."""
    return load("vm: {vcpus: 1}\nguests:\n  vcpu0:\n    handler: " + handler + "\n    ops:\n"
                + "".join(f"      - {op}\n" for op in ops) + tail)


def once(*more: str):
    return program([*ONCE_OPS, *more])


class TestResetStats:
    def test_without_reset_the_count_is_cumulative(self):
        """A second wfi_until 1 is already satisfied by the first acknowledge."""
        assert run_once(once("wfi_until: 1"), "merged", 0, "pct:3").broken == set()

    def test_after_reset_wfi_until_waits_for_new_acks(self):
        """irq_handled = 0: nothing more is injected, so the second wait never ends."""
        report = run_once(once("reset_stats:", "wfi_until: 1"), "merged", 0, "pct:3",
                          max_steps=3000)
        assert report.broken & {"deadlock", "livelock"}

    def test_reset_then_a_new_injection_is_counted(self):
        sc = once("reset_stats:", "host: {do: inject_edge, intid: 32}", "wfi_until: 1")
        assert run_once(sc, "merged", 0, "pct:3").broken == set()


# --- item 4: request names in the raw events ---------------------------------------------------


def test_request_events_carry_the_kernel_name_and_old_logs_still_read():
    buf = io.BytesIO()
    run_once(load_scenario(ROOT / "scenarios/asym_dir.yaml"), "merged", 0, "pct:3", log=buf)
    lines = buf.getvalue().splitlines()
    raw = [json.loads(line) for line in lines if b'"RequestMade"' in line]
    assert raw and all(r["req_name"] == "KVM_REQ_IRQ_PENDING" for r in raw if r["req"] == 9)
    kicks = [json.loads(line) for line in lines if b'"KickSent"' in line]
    assert any(k["req"] == 9 and k["req_name"] == "KVM_REQ_IRQ_PENDING" for k in kicks)
    assert all(k["req_name"] == "" for k in kicks if k["req"] == -1)
    old = raw[0].copy()
    del old["req_name"]  # a log written before the field existed
    (event,) = [e for e in decode_lines([json.dumps(old).encode()]) if isinstance(e, RequestMade)]
    assert event.req_name == "" and "KVM_REQ_IRQ_PENDING" in describe(event)


def test_every_operation_and_action_field_is_documented():
    """Each field of each guest operation and VMM action appears in docs/scenarios.md as code."""
    import re

    import msgspec

    from vgic_actors.scenario import host_ops
    from vgic_actors.scenario.ops import OPS

    doc = (ROOT / "docs/scenarios.md").read_text(encoding="utf-8")
    prose = re.sub(r"```.*?```", " ", doc, flags=re.S)
    code = " ".join(re.findall(r"```.*?```", doc, flags=re.S)
                    + re.findall(r"`([^`\n]+)`", prose))
    specs = [(name, kind.spec) for name, kind in OPS.items()
             if isinstance(kind.spec, type) and issubclass(kind.spec, msgspec.Struct)]
    specs += [(t.__name__, t) for t in (*host_ops.ActionSpec.__args__, host_ops.RouteSpec,
                                         host_ops.WaitSpec, host_ops.StoreSpec,
                                         host_ops.WaitResampleSpec)]
    assert len(specs) > 30
    missing = [f"{name}.{f.encode_name}" for name, spec in specs
               for f in msgspec.structs.fields(spec)
               if not re.search(rf"(?<![\w-]){re.escape(f.encode_name)}(?![\w-])", code)]
    assert missing == []


def test_every_kernel_switch_is_documented():
    """Each KernelSwitches field (a `kernel:` key) is named in docs/scenarios.md's table."""
    from dataclasses import fields

    from vgic_actors.kvm.variants import KernelSwitches

    doc = (ROOT / "docs/scenarios.md").read_text(encoding="utf-8")
    table = doc[doc.index("## Kernel switches"):doc.index("## HW-mapped interrupts")]
    assert [f.name for f in fields(KernelSwitches) if f"`{f.name}`" not in table] == []


# --- the level irqfd case and its control ----------------------------------------------------

LEVEL_HANDLER = "[{iar: {eret_if_spurious: true}}, {lower_line: }, {eoir: last}]"
LEVEL_IRQFD = [  # a level SPI raised once through an irqfd without resamplefd
    "group_enable: true", "pmr: 0xf8", "write: {reg: ICFGR, intid: 32, value: 0}",
    "write: {reg: ISENABLER, intid: 32}", "host: {do: irqfd_assign, gsi: 0, eventfd: 1}",
    "host: {do: irqfd_signal, eventfd: 1}", "unmask:", "wfi_until: 1"]


class TestLevelIrqfd:
    def test_the_atomic_injection_leaves_the_line_high_until_the_guest_lowers_it(self):
        """irqfd_wakeup injects level 1 only: the level SPI is taken once on every seed."""
        for seed in range(5):
            sc = program(LEVEL_IRQFD, LEVEL_HANDLER)
            assert run_once(sc, "merged", seed, "pct:3").broken == set()

    def test_the_kworker_pulse_can_vanish_before_the_flush(self):
        """irqfd_inject's level 1 then 0: a level SPI whose line is low is not pending, so
        it is pruned unseen and the guest waits for ever (on some seed)."""
        sc = program(LEVEL_IRQFD, LEVEL_HANDLER, "kernel: {irqfd_spi_inatomic: false}\n")
        found = set().union(*(run_once(sc, "merged", seed, "pct:3", max_steps=5000).broken
                              for seed in range(5)))
        assert found & {"deadlock", "livelock"}


# --- timer_read's busy loop (kvm-unit-tests arm/timer.c) --------------------------------------


class TestTimerBusyLoop:
    def test_the_loop_ends_when_the_deadline_passes(self):
        """ENABLE (bit 0) and ISTATUS (bit 2) read back once CNTVCT reaches CVAL."""
        sc = program(["timer: {delay: 50, ctl: 1}", "timer_read: {wait_istatus: true, expect: 5}",
                      "timer_read: 5"])
        assert run_once(sc, "merged", 0, "pct:3").broken == set()

    def test_without_a_deadline_the_loop_never_ends(self):
        """A CVAL far ahead: the spin makes no progress and the liveness monitor says so."""
        sc = program(["timer: {delay: 1000000, ctl: 1}", "timer_read: {wait_istatus: true}"])
        assert "livelock" in run_once(sc, "merged", 0, "pct:3", max_steps=3000).broken


class TestLabelBudget:
    def test_a_label_runs_with_its_own_step_budget_and_the_command_line_wins(self):
        text = (ROOT / "scenarios/selftest_vgic_edge.yaml").read_text(encoding="utf-8")
        sc = load(text)
        assert sc.judgement("actives-sorted-first").max_steps == 40000
        assert sc.judgement("merged").max_steps is None
        assert run_once(sc, "actives-sorted-first", 0, "pct:3").steps == 40000
        assert run_once(sc, "actives-sorted-first", 0, "pct:3", max_steps=5000).steps == 5000

    def test_a_label_budget_is_range_checked(self):
        text = ("vm: {vcpus: 1}\nexpect:\n  verdicts:\n    merged: {max_steps: 50}\n")
        with pytest.raises(InputError) as info:
            load(text)
        assert "$.expect.verdicts.merged.max_steps: expected an integer >= 100, got 50" in str(
            info.value)
