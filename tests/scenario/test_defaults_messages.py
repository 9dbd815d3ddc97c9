"""Issue 18 item 5: defaults and messages (step budget, liveness, value widths, YAML hints,
--log-dir / --log-seed, what the logs name and count)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from vgic_actors.cli import main
from vgic_actors.errors import InputError
from vgic_actors.events import HcrConfigured, IrqfdResampled
from vgic_actors.logs.describe import describe
from vgic_actors.scenario import load_scenario, load_scenario_text, run_once
from vgic_actors.scenario.loader import STEPS_PER_OP

ROOT = Path(__file__).resolve().parents[2]


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return main(list(argv), stdout=out, stderr=err), out.getvalue(), err.getvalue()


def error_of(text: str) -> InputError:
    with pytest.raises(InputError) as info:
        load_scenario_text(text, "t.yaml")
    return info.value


LONG = """\
vm: {vcpus: 1}
guests:
  vcpu0:
    - group_enable: true
    - for: {var: i, from: 0, to: 299, do: [{pmr: 0xf8}]}
"""


class TestStepBudget:
    def test_a_long_scenario_gets_a_budget_from_its_size(self):
        """300 operations need more than the 20,000 default: the budget grows with size."""
        sc = load_scenario_text(LONG)
        assert sc.run.max_steps == STEPS_PER_OP * 301 > 20_000

    def test_a_small_scenario_keeps_the_default_and_an_explicit_budget_wins(self):
        assert load_scenario_text("vm: {vcpus: 1}\n").run.max_steps == 20_000
        assert load_scenario_text("run: {max_steps: 500}\n").run.max_steps == 500

    def test_a_budget_spent_while_progressing_is_not_a_livelock(self):
        """The liveness monitor is cold (the guest completed an op recently): budget-spent."""
        sc = load_scenario_text(LONG)
        report = run_once(sc, "merged", 0, "random", max_steps=150)
        assert report.broken == {"budget-spent"}
        assert "raise run.max_steps" in report.violations[0].message

    def test_a_spin_without_progress_is_a_livelock(self):
        sc = load_scenario_text("vm: {vcpus: 1}\nguests:\n  vcpu0:\n"
                                "    - pmr: 0xf8\n    - wait: {var: never, value: 1}\n")
        report = run_once(sc, "merged", 0, "random", max_steps=400)
        assert report.broken == {"livelock"}

    def test_the_long_scenario_passes_under_its_derived_budget(self):
        report = run_once(load_scenario_text(LONG), "merged", 0, "pct:3")
        assert report.broken == set() and report.outcome == "quiescent"


class TestFieldWidths:
    @pytest.mark.parametrize(("reg", "value", "expected"), [
        ("IPRIORITYR", "0x1f0", "a priority byte 0..255"),
        ("ICFGR", "2", "1 (edge) or 0 (level)"),
        ("IGROUPR", "3", "0 or 1"),
        ("ISENABLER", "2", "0 or 1 (GICD_ISENABLER<n> holds one bit"),
        ("ITARGETSR", "0x100", "a CPU mask 0..255"),
    ])
    def test_a_write_wider_than_its_field_is_an_error(self, reg, value, expected):
        err = error_of(f"vm: {{vcpus: 1}}\nguests:\n  vcpu0:\n"
                       f"    - write: {{reg: {reg}, intid: 32, value: {value}}}\n")
        assert err.path == "$.guests.vcpu0[0].write.value"
        assert expected in err.format_message() and err.format_message().endswith(
            hex(int(value, 0)))

    def test_a_read_expecting_more_than_the_field_holds_is_an_error(self):
        err = error_of("vm: {vcpus: 1}\nguests:\n  vcpu0:\n"
                       "    - read: {reg: ISPENDR, intid: 32, expect: 2}\n")
        assert err.path == "$.guests.vcpu0[0].read.expect"

    def test_the_widest_values_load(self):
        load_scenario_text("vm: {vcpus: 1}\nguests:\n  vcpu0:\n"
                           "    - write: {reg: IPRIORITYR, intid: 32, value: 0xff}\n"
                           "    - read: {reg: IPRIORITYR, intid: 32, expect: 0xf8}\n")


class TestYamlHints:
    def test_an_unquoted_colon_says_to_quote(self):
        err = error_of("name: x\ndescription: fix: quote me\n")
        msg = err.format_message()
        assert msg.startswith("t.yaml:2:17: $: expected valid YAML (a plain value may not "
                              "hold ': ': quote it")
        assert msg.endswith("got mapping values are not allowed here")

    def test_a_tab_says_to_use_spaces(self):
        assert "indent with spaces" in error_of("name: x\n\tdescription: y\n").format_message()


class TestLogOptions:
    def test_log_dir_writes_one_log_per_run(self, tmp_path):
        code, _, err = cli("run", str(ROOT / "scenarios/asym_dir.yaml"), "--variant",
                           "merged,no-spi-tracking", "--runs", "2", "--log-dir",
                           str(tmp_path))
        assert err == "" and code == 0
        logs = sorted(p.name for p in tmp_path.glob("*.jsonl"))
        assert logs == ["merged-seed0.jsonl", "merged-seed1.jsonl",
                        "no-spi-tracking-seed0.jsonl", "no-spi-tracking-seed1.jsonl"]
        header = json.loads((tmp_path / "no-spi-tracking-seed1.jsonl").read_text()
                            .splitlines()[0])
        assert (header["variant"], header["seed"]) == ("no-spi-tracking", 1)
        assert (tmp_path / "merged-seed1.jsonl.choices.json").is_file()

    def test_log_seed_picks_the_run(self, tmp_path):
        log = tmp_path / "r.jsonl"
        code, _, _ = cli("run", str(ROOT / "scenarios/asym_dir.yaml"), "--variant", "merged",
                         "--runs", "3", "--log", str(log), "--log-seed", "2")
        assert code == 0
        assert json.loads(log.read_text().splitlines()[0])["seed"] == 2

    @pytest.mark.parametrize(("argv", "message"), [
        (["--log-seed", "1"], "--log-seed: needs --log FILE"),
        (["--log-dir", "/nonexistent/folder"], "expected an existing folder for --log-dir"),
        (["--runs", "2", "--log", "LOG", "--log-seed", "9"],
         "--log-seed: expected one of the seeds run (0..1), got 9"),
    ])
    def test_bad_log_options_are_one_line_exit_2(self, tmp_path, argv, message):
        argv = [str(tmp_path / "r.jsonl") if a == "LOG" else a for a in argv]
        code, _, err = cli("run", str(ROOT / "scenarios/asym_dir.yaml"), "--variant",
                           "merged", *argv)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1


class TestLogContent:
    def test_stats_count_eoir_deactivations_and_resamples(self, tmp_path):
        log = tmp_path / "r.jsonl"
        code, _, _ = cli("run", str(ROOT / "scenarios/irqfd_resample.yaml"), "--variant",
                         "pre-series", "--runs", "1", "--log", str(log))
        assert code == 0
        code, out, _ = cli("logs", "stats", str(log))
        lines = {ln[:22].strip(): ln[22:] for ln in out.splitlines()}
        assert lines["guest deactivations"] == "eoir not trapped 2"
        assert lines["irqfd resamples"] == "2"

    def test_describe_names_group_enable_bits_requests_and_resamples(self):
        hcr = HcrConfigured(step=1, vt=1, actor="pcpu0", vcpu=0, used_lrs=0, lrs=[],
                            tdir=False, vgrp0eie=True, vgrp1die=True)
        assert describe(hcr) == "flush vcpu0: LRs [] HCR[VGrp0EIE VGrp1DIE] active_spis=0"
        assert "GSI 3" in describe(IrqfdResampled(step=1, vt=1, actor="pcpu0", gsi=3))

    def test_a_logged_run_names_requests(self, tmp_path):
        log = tmp_path / "r.jsonl"
        cli("run", str(ROOT / "scenarios/asym_dir.yaml"), "--variant", "merged", "--runs",
            "1", "--log", str(log))
        code, out, _ = cli("logs", "timeline", str(log))
        assert code == 0 and "KVM_REQ_IRQ_PENDING" in out and "request 9" not in out


def test_library_files_keep_loading_under_the_width_checks():
    for path in sorted((ROOT / "scenarios").glob("*.yaml")):
        load_scenario(path)
