"""The runner's semantics: verdicts, guest handlers, op expansion, host steps, end checks.

Small VMs and few seeds; each scenario is built from text with ``load_scenario_text``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from vgic_actors.errors import InputError
from vgic_actors.guest import Dir, Eoir, Mmio, Store, WaitFor
from vgic_actors.guest.cpuif_ops import Mask, Wfi, WfiUntil
from vgic_actors.guest.host import (
    Do,
    Host,
    HostStore,
    HostWaitFor,
    InjectEdge,
    IrqfdSignal,
    SetLevel,
    WaitResample,
)
from vgic_actors.scenario import load_scenario_text, run_once, run_scenario
from vgic_actors.scenario import runner as runner_mod

ROOT = Path(__file__).resolve().parents[2]
ASYM = (ROOT / "config/default-scenario.yaml").read_text(encoding="utf-8")
ASYM_VERDICT = "no-spi-tracking: [deactivation-lost, guest-assertion]"

ONE_SPI = """\
vm: {vcpus: 1, lrs: 2}
guests:
  vcpu0:
    - group_enable: true
    - pmr: 0xf8
    - write: {reg: ISENABLER, intid: 32}
    - write: {reg: ISPENDR, intid: 32}
    - ack: 32
    - eoir: 32
    - read: {reg: ISACTIVER, intid: 32, expect: 0}
expect:
  final:
    - {intid: 32, active: false, pending: false, ap_list: none}
  counters:
    acks: {32: 1}
"""


def load(text: str):
    return load_scenario_text(text, "t.yaml")


def asym(verdict: str = ASYM_VERDICT, extra: str = ""):
    assert ASYM_VERDICT in ASYM
    return load(ASYM.replace(ASYM_VERDICT, verdict) + extra)


def variant(report, name: str):
    return next(v for v in report.variants if v.variant == name)


# --- the verdict rule -----------------------------------------------------------------------


def test_a_negative_control_holds_when_found_exactly():
    report = run_scenario(asym(), runs=2)
    assert report.ok
    v = variant(report, "no-spi-tracking")
    assert v.expected == v.found == ["deactivation-lost", "guest-assertion"]
    assert all(r.broken == {"deactivation-lost", "guest-assertion"} for r in v.runs)
    assert variant(report, "merged").found == []


def test_a_negative_control_that_is_never_found_fails():
    scenario = load(ONE_SPI + "  verdicts:\n    merged: pass\n"
                    "    no-spi-tracking: [deactivation-lost]\n")
    report = run_scenario(scenario, runs=2)
    v = variant(report, "no-spi-tracking")
    assert v.expected == ["deactivation-lost"] and v.found == [] and not v.ok
    assert variant(report, "merged").ok and not report.ok


def test_an_unlisted_violation_breaks_a_negative_control():
    """Listing only deactivation-lost is not enough: the guest's failed read is found too."""
    report = run_scenario(asym("no-spi-tracking: [deactivation-lost]"), runs=1,
                          variants=["no-spi-tracking"])
    v = report.variants[0]
    assert v.found == ["deactivation-lost", "guest-assertion"] and not v.ok and not report.ok


def test_a_variant_without_a_verdict_must_pass():
    scenario = load(ASYM.replace("    " + ASYM_VERDICT + "\n", ""))
    assert scenario.variants() == ["merged"]
    report = run_scenario(scenario, runs=1, variants=["no-spi-tracking"])
    v = report.variants[0]
    assert v.expected == [] and "deactivation-lost" in v.found and not report.ok


def test_expectations_are_judged_only_for_variants_expected_to_pass():
    # acks {32: 2} is wrong for every variant: merged fails on it, the control ignores it.
    scenario = asym(extra="")
    wrong = load(ASYM.replace("acks: {32: 1}", "acks: {32: 2}"))
    assert scenario.expect.counters.acks == {32: 1}
    report = run_scenario(wrong, runs=1)
    merged, control = variant(report, "merged"), variant(report, "no-spi-tracking")
    assert merged.found == ["expectation"] and not merged.ok
    msgs = [m.message for r in merged.runs for m in r.violations]
    assert msgs == ["INTID 32 acknowledged 1 times, expected 2"]
    assert "expectation" not in control.found and control.ok


def test_final_state_expectations_are_checked():
    wrong = load(ONE_SPI.replace("active: false, pending: false", "active: true, pending: false"))
    run = run_once(wrong, "merged", 0, "random")
    assert [v.invariant for v in run.violations] == ["expectation"]
    assert "SPI 32: active expected True, got False" in run.violations[0].message


def test_a_verdict_naming_expectation_is_rejected_or_can_hold():
    text = ASYM.replace(ASYM_VERDICT,
                        "no-spi-tracking: [deactivation-lost, guest-assertion, expectation]")
    try:
        scenario = load(text)
    except InputError:
        return  # rejected at load time: fine
    report = run_scenario(scenario, runs=1, variants=["no-spi-tracking"])
    assert report.ok, report.variants[0].found


# --- guest handlers -------------------------------------------------------------------------

HANDLER = """\
vm: {vcpus: 1, lrs: 2}
guests:
  vcpu0:
    handler: eoi
    ops:
      - group_enable: true
      - pmr: 0xf8
      - mask:
      - for: {var: i, in: [32, 33, 34], do: [{write: {reg: ISENABLER, intid: $i}}]}
      - for: {var: i, in: [32, 33, 34], do: [{write: {reg: ISPENDR, intid: $i}}]}
      - UNMASK
      - wfi_until: WANT
      - mask:
expect:
  counters:
    acks: {32: ACKS, 33: ACKS, 34: ACKS}
"""


def handler_scenario(unmask: bool, want: int, acks: int):
    text = HANDLER.replace("UNMASK", "unmask:" if unmask else "mask:")
    return load(text.replace("WANT", str(want)).replace("ACKS", str(acks)))


def test_the_handler_template_runs_once_per_interrupt_when_unmasked():
    scenario = handler_scenario(unmask=True, want=3, acks=1)
    assert isinstance(scenario.guests[0].ops[-2], WfiUntil)
    assert [type(op).__name__ for op in scenario.guests[0].handler] == ["Iar", "Eoir"]
    for seed in (0, 1):
        run = run_once(scenario, "merged", seed, "pct:3")
        assert run.outcome == "quiescent" and run.violations == [], run.violations


def test_the_handler_does_not_run_while_masked():
    """Guests start masked. Still masked, the vIRQ is pending but no handler runs: nothing is
    acknowledged (the acks expectation of 0 holds) and wfi_until reports the guest's own
    mistake instead of waiting for ever."""
    scenario = handler_scenario(unmask=False, want=1, acks=0)
    run = run_once(scenario, "merged", 0, "random")
    assert run.outcome == "quiescent"
    assert [v.invariant for v in run.violations] == ["guest-assertion"]
    assert "waits for 1 acks with IRQs masked" in run.violations[0].message


def test_wfi_until_waits_for_more_acks_than_come():
    scenario = handler_scenario(unmask=True, want=4, acks=1)
    run = run_once(scenario, "merged", 0, "random")
    assert {v.invariant for v in run.violations} == {"deadlock"}


def test_an_inline_handler_sees_the_acknowledged_intid():
    scenario = load("""\
vm: {vcpus: 1}
guests:
  vcpu0:
    handler:
      - iar:
      - eoir: last
      - store: {var: seen, value: last_ack}
    ops:
      - group_enable: true
      - pmr: 0xf8
      - write: {reg: ISENABLER, intid: 40}
      - write: {reg: ISPENDR, intid: 40}
      - unmask:
      - wait: {var: seen, value: 40}
expect:
  counters:
    acks: {40: 1}
""")
    handler = scenario.guests[0].handler
    assert isinstance(handler[2], Store) and handler[2].last_ack
    run = run_once(scenario, "merged", 0, "random")
    assert run.outcome == "quiescent" and run.violations == []


# --- expansion: for / repeat / call ---------------------------------------------------------


def ops_of(body: str, templates: str = ""):
    text = f"vm: {{vcpus: 1, nr_spis: 64}}\n{templates}guests:\n  vcpu0:\n{body}"
    return load(text).guests[0].ops


def test_for_from_to_substitutes_each_value():
    ops = ops_of("    - for: {var: i, from: 32, to: 35, do: "
                 "[{write: {reg: ISENABLER, intid: $i}}, {eoir: $i}]}\n")
    assert len(ops) == 8
    assert [op.intid for op in ops[::2]] == [32, 33, 34, 35]
    assert all(isinstance(op, Mmio) and op.reg == "ISENABLER" for op in ops[::2])
    assert [op.intid for op in ops[1::2]] == [32, 33, 34, 35]
    assert all(isinstance(op, Eoir) for op in ops[1::2])


def test_for_in_and_nested_loops():
    ops = ops_of("    - for:\n        var: i\n        in: [40, 90]\n        do:\n"
                 "          - for: {var: j, in: [1, 2, 3], do: [{wait: {var: w, value: $j}},"
                 " {dir: $i}]}\n")
    assert len(ops) == 12
    assert [op.intid for op in ops if isinstance(op, Dir)] == [40] * 3 + [90] * 3
    assert [op.value for op in ops if isinstance(op, WaitFor)] == [1, 2, 3, 1, 2, 3]


def test_repeat_multiplies_its_body():
    ops = ops_of("    - repeat: {count: 3, do: [{wfi: }, {mask: }]}\n"
                 "    - repeat: {count: 0, do: [{wfi: }]}\n")
    assert [type(op) for op in ops] == [Wfi, Mask] * 3


def test_call_expands_a_template_with_its_variables():
    templates = ("templates:\n  deact:\n    - dir: $x\n    - store: {var: done, value: $x}\n"
                 "  twice:\n    - call: {template: deact, with: {x: $y}}\n"
                 "    - call: {template: deact, with: {x: 70}}\n")
    ops = ops_of("    - call: {template: twice, with: {y: 33}}\n    - call: eoi\n", templates)
    assert [type(op).__name__ for op in ops] == ["Dir", "Store", "Dir", "Store", "Iar", "Eoir"]
    assert (ops[0].intid, ops[1].value, ops[2].intid, ops[3].value) == (33, 33, 70, 70)


def test_a_scenario_template_overrides_a_builtin_one():
    ops = ops_of("    - call: eoi\n", "templates:\n  eoi:\n    - wfi:\n")
    assert [type(op) for op in ops] == [Wfi]


def test_an_unbound_variable_inside_a_loop_is_an_error_at_its_path():
    with pytest.raises(InputError) as info:
        ops_of("    - for: {var: i, in: [32], do: [{dir: $k}]}\n")
    assert info.value.path == "$.guests.vcpu0[0].for.do[0].dir.intid"


def test_a_template_cycle_is_an_error_not_a_hang():
    with pytest.raises(InputError) as info:
        ops_of("    - call: a\n", "templates:\n  a: [{call: b}]\n  b: [{call: a}]\n")
    assert "16 deep" in info.value.expected


# --- host steps -----------------------------------------------------------------------------


def test_host_steps_decode_into_vmm_actions():
    scenario = load("""\
vm: {vcpus: 1}
host:
  - {do: inject_edge, intid: 32}
  - {do: set_level, intid: 33, level: false, vcpu: 0, expect_errno: 22}
  - {do: wait, var: ready, value: 1}
  - {do: store, var: go, value: 2}
  - {do: wait_resample, resamplefd: dev.resample}
guests:
  vcpu0:
    - host: {do: irqfd_signal, eventfd: efd}
""")
    assert scenario.host == [
        Do(InjectEdge(32, 0), 0),
        Do(SetLevel(33, False, 0), 22),
        HostWaitFor("ready", 1),
        HostStore("go", 2),
        WaitResample("dev.resample"),
    ]
    assert scenario.guests[0].ops == [Host(IrqfdSignal("efd"), 0)]


@pytest.mark.parametrize(("host", "path", "expected"), [
    ("host:\n  - {do: nosuch}\n", "$.host[0].do", "inject_edge"),
    ("host:\n  - {intid: 32}\n", "$.host[0].do", "inject_edge"),
    ("host:\n  - {do: inject_edge}\n", "$.host[0]", "'intid'"),
    ("host:\n  - {do: store, var: x}\n", "$.host[0]", "'value'"),
    ("host:\n  - {do: inject_edge, intid: 32, colour: red}\n", "$.host[0].colour", "known"),
    ("host: {do: inject_edge}\n", "$.host", "a list"),
])
def test_bad_host_steps_are_named(host, path, expected):
    with pytest.raises(InputError) as info:
        load(host)
    assert info.value.path == path and expected in info.value.expected


def test_a_host_step_injects_into_the_running_vm():
    scenario = load("""\
vm: {vcpus: 1}
host:
  - {do: wait, var: ready, value: 1}
  - {do: inject_edge, intid: 32}
guests:
  vcpu0:
    - group_enable: true
    - pmr: 0xf8
    - write: {reg: ISENABLER, intid: 32}
    - store: {var: ready, value: 1}
    - ack: 32
    - eoir: 32
expect:
  counters:
    acks: {32: 1}
""")
    run = run_once(scenario, "merged", 0, "random")
    assert run.outcome == "quiescent" and run.violations == []


# --- end-of-run checks: each invariant can fire ---------------------------------------------


def broken(run) -> set[str]:
    return {v.invariant for v in run.violations}


def test_deadlock_fires_when_a_guest_waits_for_ever():
    scenario = load("vm: {vcpus: 1}\nguests:\n  vcpu0:\n    - group_enable: true\n"
                    "    - ack: 32\n")
    run = run_once(scenario, "merged", 0, "random")
    assert broken(run) == {"deadlock"}
    assert "vcpu0 at pc1 (Ack) waits for ever" in run.violations[0].message


def test_deadlock_fires_when_the_vmm_waits_for_ever():
    scenario = load("vm: {vcpus: 1}\nhost:\n  - {do: wait_resample, resamplefd: r}\n")
    run = run_once(scenario, "merged", 0, "random")
    assert broken(run) == {"deadlock"} and "vmm at step 0" in run.violations[0].message


def test_livelock_fires_when_the_budget_runs_out():
    scenario = load("vm: {vcpus: 1}\nguests:\n  vcpu0:\n    - wait: {var: never, value: 1}\n")
    run = run_once(scenario, "merged", 0, "random", max_steps=200)
    assert broken(run) == {"livelock"} and run.steps >= 200


def test_guest_assertion_fires_on_a_wrong_read():
    scenario = load("vm: {vcpus: 1}\nguests:\n  vcpu0:\n"
                    "    - read: {reg: ISENABLER, intid: 32, expect: 1}\n")
    run = run_once(scenario, "merged", 0, "random")
    assert broken(run) == {"guest-assertion"}
    assert "expected 1, got 0" in run.violations[0].message


def test_a_vmm_errno_mismatch_is_a_guest_assertion():
    scenario = load("vm: {vcpus: 1}\nhost:\n  - {do: inject_edge, intid: 99}\n")
    run = run_once(scenario, "merged", 0, "random")
    assert broken(run) == {"guest-assertion"}


def test_deactivation_lost_fires_on_the_asymmetric_dir_without_tracking():
    run = run_once(asym(), "no-spi-tracking", 0, "pct:3")
    assert broken(run) == {"deactivation-lost", "guest-assertion"}
    lost = next(v for v in run.violations if v.invariant == "deactivation-lost")
    assert lost.message.startswith("SPI 32 is still Active") and "vcpu1 DIR" in lost.message


DEC_ON_FOLD = (ROOT / "scenarios/dec_on_fold.yaml").read_text(encoding="utf-8")


def test_active_spis_undercount_fires_on_the_decrement_on_fold_mutant():
    scenario = load(DEC_ON_FOLD)
    found = set().union(*(broken(run_once(scenario, "mutant-dec-on-every-fold", s, "pct:3"))
                          for s in range(4)))
    assert "active-spis-undercount" in found
    assert not broken(run_once(scenario, "merged", 0, "pct:3"))


@pytest.fixture
def corrupt(monkeypatch):
    """Run ``corrupt.fn(kvm)`` on the final state, just before the end-of-run checks."""

    class Hook:
        @staticmethod
        def fn(kvm) -> None:
            """Replaced by each test."""

    real = runner_mod.check_run

    def check_run(kvm, *args, **kwargs):
        Hook.fn(kvm)
        return real(kvm, *args, **kwargs)

    monkeypatch.setattr(runner_mod, "check_run", check_run)
    return Hook


def test_ap_list_consistency_fires_on_a_stray_irq_vcpu(corrupt):
    def stray(kvm):
        kvm.dist.spis[5].vcpu = 0  # SPI 37 claims vcpu0's ap_list but is not on it

    corrupt.fn = stray
    run = run_once(load(ONE_SPI), "merged", 0, "random")
    assert broken(run) == {"ap-list-consistency"}
    assert "SPI 37 has irq->vcpu = 0 but is on no ap_list" in run.violations[0].message


def test_ap_list_consistency_covers_lpis(corrupt):
    """An LPI (dist->lpi_xa) claiming an ap_list it is not on is caught like an SPI."""
    from vgic_actors.kvm.irq import VgicIrq

    def stray_lpi(kvm):
        kvm.dist.lpi_xa[8192] = VgicIrq(intid=8192, target_vcpu=0, vcpu=0)

    corrupt.fn = stray_lpi
    run = run_once(load(ONE_SPI), "merged", 0, "random")
    assert broken(run) == {"ap-list-consistency"}
    assert "LPI 8192 has irq->vcpu = 0 but is on no ap_list" in run.violations[0].message


def test_ap_list_consistency_fires_on_an_irq_on_two_ap_lists(corrupt):
    def twice(kvm):
        irq = kvm.dist.spis[1]
        irq.vcpu = 0
        kvm.vcpus[0].ap_list.append(irq)
        kvm.vcpus[1].ap_list.append(irq)

    corrupt.fn = twice
    run = run_once(asym(), "merged", 0, "random")
    messages = [v.message for v in run.violations if v.invariant == "ap-list-consistency"]
    assert any("on vcpu0's and vcpu1's ap_lists" in m for m in messages)


def test_phys_deactivation_once_fires_on_a_spurious_deactivation(corrupt):
    def spurious(kvm):
        kvm.phys.spurious_deactivations.append(30)

    corrupt.fn = spurious
    run = run_once(load(ONE_SPI), "merged", 0, "random")
    assert broken(run) == {"phys-deactivation-once"}
    assert "physical INTID 30" in run.violations[0].message


def test_tdir_sticky_is_a_warning_not_a_violation():
    scenario = load((ROOT / "scenarios/tdir_sticky.yaml").read_text(encoding="utf-8"))
    run = run_once(scenario, "merged", 0, "pct:3")
    assert run.violations == []
    assert [w.invariant for w in run.warnings] == ["tdir-sticky"]
    assert [w.kind for w in run.warnings] == ["warning"]
    clean = run_once(scenario, "no-spi-tracking", 0, "pct:3")
    assert clean.warnings == []


def test_a_warning_cannot_be_a_verdict():
    with pytest.raises(InputError) as info:
        load(ONE_SPI + "  verdicts: {merged: tdir-sticky}\n")
    assert info.value.path == "$.expect.verdicts.merged"
