"""Issue 18 items 1-4: expressions and loops, the new operations, verdicts per variant with
kernel switches and warnings, and HW-mapped interrupts taken where the vCPU runs."""

from __future__ import annotations

import io
import re
from pathlib import Path

import msgspec
import pytest

from vgic_actors.errors import InputError
from vgic_actors.events import MessageDelivered, MessageSent, decode_lines
from vgic_actors.guest import Mmio
from vgic_actors.guest.poll import Poll
from vgic_actors.guest.sysreg import IccRead, IccWrite
from vgic_actors.scenario import load_scenario_text, run_once, run_scenario
from vgic_actors.scenario.expr import ExprError, evaluate, names

ROOT = Path(__file__).resolve().parents[2]


def load(text: str):
    return load_scenario_text(text, "t.yaml")


def error_of(text: str) -> InputError:
    with pytest.raises(InputError) as info:
        load(text)
    return info.value


def ops_of(body: str, head: str = "vm: {vcpus: 1, nr_spis: 64}\n"):
    return load(head + "guests:\n  vcpu0:\n" + body).guests[0].ops


# --- item 2: expressions and loops -----------------------------------------------------------


class TestExpressions:
    @pytest.mark.parametrize(("text", "value"), [
        ("$i*8", 64), ("$(i % 31) << 3", 64), ("$0x20 + i", 40), ("$-i + 100", 92),
        ("$min(i, 3) | 4", 7), ("$max(i, 9) // 2", 4), ("$~i & 0xff", 247), ("$i ^ 1", 9),
    ])
    def test_evaluate(self, text, value):
        assert evaluate(text, {"i": 8}) == value

    @pytest.mark.parametrize(("text", "expected"), [
        ("$i*", "an integer expression"), ("$i/2", "use // for integer division"),
        ("$i.real", "an integer expression"), ("$open(1)", "the only functions are min"),
        ("$1 if i else 2", "an integer expression"), ("$1.5", "an integer expression"),
        ("$i // 0", "a non-zero divisor"), ("$1 << 65", "a shift of 0..64"),
        ("$0xffffffffffffffff * 0xffffffffffffffff", "values within 64 bits"),
        ("$j + 1", "variables bound here (i)"), ("$" + "1+" * 150 + "1", "at most 200"),
    ])
    def test_bad_expressions_say_what_was_expected(self, text, expected):
        with pytest.raises(ExprError) as info:
            evaluate(text, {"i": 8})
        assert expected in info.value.expected

    def test_names_skips_functions(self):
        assert names("$min(a, b) + c") == {"a", "b", "c"}

    def test_computed_values_in_a_loop_with_a_step(self):
        ops = ops_of("    - for:\n        var: i\n        from: 32\n        to: $32 + 8*3\n"
                     "        step: 8\n        do:\n"
                     "          - write: {reg: IPRIORITYR, intid: $i, value: $(i % 31) << 3}\n")
        assert [(o.intid, o.value) for o in ops if isinstance(o, Mmio)] == [
            (32, 8), (40, 72), (48, 136), (56, 200)]

    def test_an_inner_loop_uses_the_outer_variable(self):
        ops = ops_of("    - for:\n        var: i\n        in: [32, 40]\n        do:\n"
                     "          - for: {var: j, in: [$i, $i+1], do: [{write: "
                     "{reg: ISENABLER, intid: $j}}]}\n")
        assert [o.intid for o in ops if isinstance(o, Mmio)] == [32, 33, 40, 41]

    def test_an_error_is_located_at_the_value(self):
        err = error_of("vm: {vcpus: 1}\nguests:\n  vcpu0:\n    - for: {var: i, from: 32, to: 33, "
                       "do: [{write: {reg: IPRIORITYR, intid: 32, value: \"$i/2\"}}]}\n")
        assert err.path == "$.guests.vcpu0[0].for.do[0].write.value"
        assert err.format_message().startswith("t.yaml:4:")

    def test_an_unbound_variable_names_the_bound_ones(self):
        err = error_of("vm: {vcpus: 1}\nguests:\n  vcpu0:\n    - for: {var: i, in: [32], "
                       "do: [{write: {reg: ISENABLER, intid: \"$k + i\"}}]}\n")
        assert err.path == "$.guests.vcpu0[0].for.do[0].write.intid"
        assert "(here: i)" in err.expected and "k in" in err.got

    def test_a_computed_value_is_still_range_checked(self):
        err = error_of("vm: {vcpus: 1}\nguests:\n  vcpu0:\n    - for: {var: i, in: [62], "
                       "do: [{write: {reg: IPRIORITYR, intid: $i, value: $i * 8}}]}\n")
        assert "a priority byte 0..255" in err.expected and err.got == "0x1f0"

    def test_a_template_argument_used_in_an_expression_is_required(self):
        head = "vm: {vcpus: 1}\ntemplates:\n  t: [{write: {reg: ISENABLER, intid: $32 + c}}]\n"
        assert [o.intid for o in ops_of("    - call: {template: t, with: {c: 5}}\n", head)] \
            == [37]
        err = error_of(head + "guests:\n  vcpu0:\n    - call: t\n")
        assert "argument c of template t" in err.expected

    def test_a_zero_step_is_an_error(self):
        err = error_of("guests:\n  vcpu0:\n    - for: {var: i, from: 0, to: 3, step: 0, "
                       "do: [{pmr: 0xf8}]}\n")
        assert err.path == "$.guests.vcpu0[0].for.step"


# --- item 3: operations ----------------------------------------------------------------------


GROUP0 = """\
vm: {vcpus: 1}
guests:
  vcpu0:
    - icc: {reg: ICC_IGRPEN0_EL1, value: 1}
    - icc: {reg: ICC_PMR_EL1, value: 0xf8}
    - icc: {reg: ICC_PMR_EL1, expect: 0xf8}
    - icc: {reg: ICC_CTLR_EL1, value: 2}
    - icc: {reg: ICC_CTLR_EL1, expect: 2, mask: 2}
    - write: {reg: IGROUPR, intid: 32, value: 0}
    - write: {reg: ISENABLER, intid: 32}
    - write: {reg: ISPENDR, intid: 32}
    - ack: {expect: 32, group: 0}
    - poll: {reg: ISACTIVER, intid: 32, until: 1}
    - icc: {reg: ICC_EOIR0_EL1, intid: 32}
    - icc: {reg: ICC_AP0R0_EL1, expect: 0}
    - icc: {reg: ICC_DIR_EL1, intid: 32}
    - poll: {reg: ISACTIVER, intid: 32, until: 0, max: 3}
    - icc: {reg: ICC_IAR0_EL1, expect: 1023}
expect:
  counters: {acks: {32: 1}}
  final: [{intid: 32, active: false, pending: false}]
"""


class TestOperations:
    def test_group0_ack_icc_and_poll_run_clean(self):
        report = run_scenario(load(GROUP0), runs=3)
        assert report.ok and report.variants[0].found == []

    def test_group0_ack_needs_group0_enabled(self):
        """With IGRPEN0 left 0 the Group-0 interrupt never signals: the ack never ends."""
        text = GROUP0.replace("    - icc: {reg: ICC_IGRPEN0_EL1, value: 1}\n", "")
        report = run_once(load(text), "merged", 0, "pct:3", max_steps=3000)
        assert report.broken & {"deadlock", "livelock"}
        assert run_once(load(GROUP0), "merged", 0, "pct:3").broken == set()

    def test_a_poll_that_never_sees_its_value_fails_after_max_reads(self):
        sc = load("vm: {vcpus: 1}\nguests:\n  vcpu0:\n"
                  "    - poll: {reg: ISPENDR, intid: 32, until: 1, max: 4}\n")
        report = run_once(sc, "merged", 0, "pct:3")
        assert report.broken == {"guest-assertion"}
        assert "read 0 4 times, never 1" in report.violations[0].message

    def test_icc_decodes_to_reads_and_writes(self):
        ops = ops_of("    - icc: {reg: ICC_BPR1_EL1, value: 3}\n    - icc: ICC_RPR_EL1\n")
        assert ops == [IccWrite("ICC_BPR1_EL1", 3), IccRead("ICC_RPR_EL1", None)]

    @pytest.mark.parametrize(("op", "path", "expected"), [
        ("icc: {reg: ICC_FOO_EL1}", ".icc.reg", "an ICC register"),
        ("icc: {reg: ICC_RPR_EL1, value: 1}", ".icc.reg", "a writable ICC register"),
        ("icc: {reg: ICC_PMR_EL1, value: 1, expect: 1}", ".icc.expect", "not both"),
        ("ack: {group: 2}", ".ack.group", "one of 0, 1"),
        ("poll: {reg: ISACTIVER, intid: 32, until: 0, max: 0}", ".poll.max", ">= 1"),
        ("poll: {reg: ISACTIVER, intid: 99, until: 0}", ".poll.intid", "an INTID"),
    ])
    def test_bad_operations_name_their_field(self, op, path, expected):
        err = error_of(f"vm: {{vcpus: 1}}\nguests:\n  vcpu0:\n    - {op}\n")
        assert err.path == "$.guests.vcpu0[0]" + path and expected in err.expected

    def test_spin_iar_lower_line_and_read_last(self):
        """A level SPI handled by a generic handler: read last, lower_line, EOIR; spin_iar
        fails after max spurious reads."""
        sc = load("vm: {vcpus: 1}\nirqs: [{intid: 40, trigger: level}]\nguests:\n  vcpu0:\n"
                  "    - group_enable: true\n    - pmr: 0xf8\n"
                  "    - write: {reg: ISENABLER, intid: 40}\n"
                  "    - host: {do: set_level, intid: 40, level: true}\n"
                  "    - spin_iar: {expect: 40}\n"
                  "    - read: {reg: ISACTIVER, intid: last, expect: 1}\n"
                  "    - lower_line:\n    - eoir: last\n"
                  "    - read: {reg: ISPENDR, intid: last, expect: 0}\n"
                  "    - spin_iar: {max: 5}\n")
        report = run_once(sc, "merged", 0, "pct:3")
        assert report.broken == {"guest-assertion"}
        assert [v.message.split(": ", 1)[1] for v in report.violations] == [
            "ICC_IAR1_EL1 read 1023 5 times"]

    def test_an_eventfd_may_be_named_by_a_number(self):
        sc = load("vm: {vcpus: 1}\nguests:\n  vcpu0:\n    - group_enable: true\n"
                  "    - pmr: 0xf8\n    - write: {reg: ISENABLER, intid: 33}\n"
                  "    - for: {var: i, in: [33], do: [{host: {do: irqfd_assign, gsi: $i - 32, "
                  "eventfd: $i}}, {host: {do: irqfd_signal, eventfd: $i}}, {ack: $i}, "
                  "{eoir: $i}]}\n")
        assert run_once(sc, "merged", 0, "pct:3").broken == set()

    def test_poll_decodes(self):
        assert ops_of("    - poll: {reg: ISACTIVER, intid: 32, until: 0}\n") == [
            Poll("ISACTIVER", 32, 0, 100)]


# --- item 4: verdicts per variant ------------------------------------------------------------


TDIR = (ROOT / "scenarios/tdir_sticky.yaml").read_text(encoding="utf-8")


class TestVerdicts:
    def test_a_named_control_runs_a_variant_with_a_switch_flipped(self):
        """timer: without the physical deactivation the re-armed timer never fires again."""
        text = (ROOT / "scenarios/selftest_timer_spi.yaml").read_text(encoding="utf-8")
        sc = load(text)
        j = sc.judgement("no-phys-deactivation")
        assert (j.variant, j.kernel) == ("merged", (("hw_deactivate_phys", False),))
        report = run_scenario(sc, runs=2, variants=["no-phys-deactivation", "merged"])
        assert report.ok, [(v.variant, v.found) for v in report.variants]

    def test_a_failing_verdict_may_carry_its_own_expectations(self):
        sc = load(TDIR.replace("    merged: pass\n", "    merged: pass\n"
                               "    no-spi-tracking:\n      found: [expectation]\n"
                               "      counters: {active_spis: 1}\n"))
        v = run_scenario(sc, runs=1, variants=["no-spi-tracking"]).variants[0]
        assert v.expected == v.found == ["expectation"]
        assert "active_spis expected 1, got 0" in v.runs[0].violations[0].message

    def test_per_variant_expectations_replace_the_top_level_ones(self):
        sc = load(TDIR.replace("    merged: pass\n", "    merged: pass\n"
                               "    no-spi-tracking:\n      counters: {active_spis: 0, "
                               "tdir: {0: false, 1: false}}\n"))
        assert run_scenario(sc, runs=1, variants=["no-spi-tracking"]).ok

    def test_warnings_required_and_forbidden(self):
        required = load(TDIR.replace("  verdicts:", "  warnings: {required: [tdir-sticky]}\n"
                                     "  verdicts:"))
        assert run_scenario(required, runs=1, variants=["merged"]).ok
        forbidden = load(TDIR.replace("  verdicts:", "  warnings: {forbidden: [tdir-sticky]}\n"
                                      "  verdicts:"))
        v = run_scenario(forbidden, runs=1, variants=["merged"]).variants[0]
        assert v.found == ["warning-forbidden:tdir-sticky"] and not v.ok
        missing = load(TDIR.replace("    merged: pass\n", "    merged: pass\n"
                                    "    no-spi-tracking:\n      counters: {active_spis: 0}\n"
                                    "      warnings: {required: [tdir-sticky]}\n"))
        v = run_scenario(missing, runs=1, variants=["no-spi-tracking"]).variants[0]
        assert v.found == ["warning-missing:tdir-sticky"]

    def test_a_judged_warning_is_not_printed_as_noise(self):
        from vgic_actors.scenario.report import render

        plain = load(TDIR)
        judged = load(TDIR.replace("  verdicts:", "  warnings: {required: [tdir-sticky]}\n"
                                   "  verdicts:"))
        assert "tdir-sticky on merged" in render(plain, run_scenario(plain, runs=1))
        assert "tdir-sticky" not in render(judged, run_scenario(judged, runs=1))

    @pytest.mark.parametrize(("text", "path", "expected"), [
        ("kernel: {no_such_switch: true}\n", "$.kernel.no_such_switch", "a kernel switch"),
        ("kernel: {dir_trapping: 3}\n", "$.kernel.dir_trapping", "true or false"),
        ("kernel: {bcst_kick: sometimes}\n", "$.kernel.bcst_kick", "'v3_model'"),
        ("expect:\n  verdicts:\n    ctl: {found: deadlock}\n", "$.expect.verdicts.ctl",
         "with variant: in its mapping"),
        ("expect:\n  verdicts:\n    ctl: {variant: mergd}\n", "$.expect.verdicts.ctl.variant",
         "a variant name"),
        ("expect:\n  verdicts:\n    merged: {found: [tdir-sticky]}\n",
         "$.expect.verdicts.merged.found[0]", "pass or the invariants"),
        ("expect:\n  warnings: {required: [deadlock]}\n", "$.expect.warnings.required[0]",
         "a warning name"),
        ("expect:\n  verdicts:\n    merged: {kernel: {dir_trapping: maybe}}\n",
         "$.expect.verdicts.merged.kernel.dir_trapping", "true or false"),
    ])
    def test_bad_verdicts_and_switches(self, text, path, expected):
        err = error_of(text)
        assert err.path == path and expected in err.expected

    def test_a_file_wide_switch_applies_to_every_label(self):
        sc = load("kernel: {group_enable_mis: false}\n")
        assert sc.judgement("merged").kernel == (("group_enable_mis", False),)
        assert sc.judgement("pre-series").kernel == (("group_enable_mis", False),)


# --- item 1: HW-mapped interrupts ------------------------------------------------------------


HW_PPI = """\
vm: {vcpus: 2}
guests:
  vcpu1:
    - group_enable: true
    - pmr: 0xf8
    - write: {reg: ISENABLER, intid: 27}
    - timer: {cval: now, ctl: 1}
    - read: {reg: ISPENDR, intid: 27, expect: 1}
    - timer_read: 5                  # ENABLE | ISTATUS
    - ack: 27
    - timer: {ctl: 3}                # IMASK: the line drops
    - read: {reg: ISPENDR, intid: 27, expect: 0}
    - eoir: 27
    - read: {reg: ISACTIVER, intid: 27, expect: 0}
expect:
  counters: {acks: {27: 1}}
"""


class TestHwMapped:
    def test_the_timer_ppi_is_taken_on_the_vcpus_pcpu(self):
        sc = load(HW_PPI)
        buf = io.BytesIO()
        report = run_once(sc, "merged", 0, "pct:3", log=buf)
        assert report.broken == set()
        sent = [e for e in decode_lines(buf.getvalue().splitlines())
                if isinstance(e, MessageSent) and e.kind == "phys_irq"]
        assert sent and all(e.dst == "cpu1.ipi" for e in sent)  # the CPU vcpu1 runs on

    def test_physical_delivery_is_bounded_like_an_ipi(self):
        """Every phys_irq message lands within ipi_latency (8) virtual ticks, and the guest
        running on that pCPU exits for it (an IPI-class exit)."""
        for seed in range(4):
            buf = io.BytesIO()
            run_once(load(HW_PPI), "merged", seed, "random", log=buf)
            events = list(decode_lines(buf.getvalue().splitlines()))
            sent = {e.msg: e.vt for e in events if isinstance(e, MessageSent)
                    and e.kind == "phys_irq"}
            got = {e.msg: e.vt for e in events if isinstance(e, MessageDelivered)
                   and e.msg in sent}
            assert sent and set(got) == set(sent)
            assert all(got[m] - sent[m] <= 8 for m in sent)

    def test_the_guest_reads_the_physical_line_of_a_mapped_level_ppi(self):
        """The line, not the virtual latch: after IMASK the read is 0 though 27 is Active."""
        for seed in range(5):
            assert run_once(load(HW_PPI), "merged", seed, "random").broken == set()

    def test_two_vcpus_have_two_physical_timer_ppis(self):
        sc = load(HW_PPI.replace("  vcpu1:", "  vcpu0:") + "")
        report = run_once(sc, "merged", 0, "pct:3")
        assert report.broken == set()

    def test_the_timer_ops_decode(self):
        ops = ops_of("    - timer: {cval: now, ctl: 1}\n    - timer: {delay: 50}\n"
                     "    - timer: 0\n")
        assert [(o.ctl, o.cval, o.delay) for o in ops] == [(1, None, 0), (None, None, 50),
                                                          (0, None, None)]

    def test_a_timer_in_the_future_fires_at_cval(self):
        sc = load("vm: {vcpus: 1}\nguests:\n  vcpu0:\n    - group_enable: true\n"
                  "    - pmr: 0xf8\n    - write: {reg: ISENABLER, intid: 27}\n"
                  "    - timer: {delay: 300, ctl: 1}\n    - timer_read: 1\n    - ack: 27\n"
                  "    - timer_read: 5\n")
        report = run_once(sc, "merged", 0, "pct:3")
        assert report.broken == set() and report.vt >= 300


def test_every_schema_field_and_operation_is_documented():
    from vgic_actors.scenario import schema
    from vgic_actors.scenario.host_ops import ACTION_NAMES
    from vgic_actors.scenario.ops import _FORMS, OPS

    doc = (ROOT / "docs/scenarios.md").read_text(encoding="utf-8")
    fenced = re.findall(r"```.*?```", doc, flags=re.S)
    prose = re.sub(r"```.*?```", " ", doc, flags=re.S)
    code = " ".join(fenced + re.findall(r"`([^`\n]+)`", prose))  # every code span

    def documented(name: str) -> bool:
        return re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", code) is not None

    missing = [f"op {name}" for name in [*OPS, *_FORMS, *ACTION_NAMES]
               if f"`{name}`" not in doc]
    for struct in (schema.ScenarioFile, schema.VmSection, schema.IrqSection, schema.FinalIrq,
                   schema.Counters, schema.Expect, schema.RunSection, schema.GuestSection,
                   schema.VerdictSpec, schema.WarningsSpec, schema.ArchSection):
        missing += [f"{struct.__name__}.{f.encode_name}" for f in msgspec.structs.fields(struct)
                    if not documented(f.encode_name)]
    assert missing == []
