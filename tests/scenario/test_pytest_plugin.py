"""The pytest plugin: a folder of scenarios collected with --vgic-scenarios, run by pytest."""

from __future__ import annotations

from pathlib import Path

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = (ROOT / "config/default-scenario.yaml").read_text(encoding="utf-8")
CONTROL = "no-spi-tracking: [deactivation-lost, guest-assertion]"

SMALL = """\
name: small
vm: {vcpus: 1}
guests:
  vcpu0:
    - group_enable: true
    - pmr: 0xf8
    - write: {reg: ISENABLER, intid: 32}
    - write: {reg: ISPENDR, intid: 32}
    - ack: 32
    - eoir: 32
expect:
  counters:
    acks: {32: 1}
  verdicts:
    merged: pass
    pre-series: pass
    v4-applied: pass
"""

NO_VERDICTS = "vm: {vcpus: 1}\nguests:\n  vcpu0:\n    - iar: 1023\n"


def write(folder: Path, files: dict[str, str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")


def test_a_folder_is_collected_one_item_per_listed_variant(pytester):
    write(pytester.path / "scen", {"default.yaml": DEFAULT, "small.yaml": SMALL,
                                   "bare.yaml": NO_VERDICTS, "notes.txt": "not a scenario"})
    result = pytester.runpytest("--vgic-scenarios", "scen", "--collect-only", "-q")
    assert result.ret == 0
    items = sorted(line for line in result.outlines if "::" in line)
    assert items == sorted([
        "scen/bare.yaml::merged",
        "scen/default.yaml::merged",
        "scen/default.yaml::no-spi-tracking",
        "scen/small.yaml::merged",
        "scen/small.yaml::pre-series",
        "scen/small.yaml::v4-applied",
    ])


def test_the_collected_scenarios_run_and_pass(pytester):
    write(pytester.path / "scen", {"default.yaml": DEFAULT, "small.yaml": SMALL})
    result = pytester.runpytest("--vgic-scenarios", "scen", "--vgic-seeds", "2", "-v")
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines(["*scen/default.yaml::no-spi-tracking PASSED*"])


def test_yaml_outside_the_scenario_folder_is_not_collected(pytester):
    write(pytester.path / "scen", {"small.yaml": SMALL})
    write(pytester.path / "other", {"config.yaml": "just: data\n"})
    result = pytester.runpytest("--vgic-scenarios", "scen", "--collect-only", "-q")
    assert result.ret == 0
    assert not [line for line in result.outlines if "config.yaml" in line]
    assert len([line for line in result.outlines if "::" in line]) == 3


def test_a_failing_verdict_fails_with_the_summary_and_no_traceback(pytester):
    write(pytester.path / "scen", {
        "wrong.yaml": DEFAULT.replace(CONTROL, "no-spi-tracking: pass"),
    })
    result = pytester.runpytest("--vgic-scenarios", "scen", "--vgic-seeds", "2")
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str()
    result.stdout.fnmatch_lines([
        "*FAIL no-spi-tracking  found: deactivation-lost in 2/2, expectation in 2/2, "
        "guest-assertion in 2/2*",
        "*result: a verdict did not hold (exit status 1)*",
    ])
    assert "Traceback" not in out and "ScenarioFailed" not in out
    assert "runtest" not in out and "raise " not in out


def test_a_malformed_file_is_a_collection_error_naming_file_and_path(pytester):
    write(pytester.path / "scen", {
        "small.yaml": SMALL,
        "broken.yaml": "vm:\n  vcpus: 2\n  lrz: 4\n",
    })
    result = pytester.runpytest("--vgic-scenarios", "scen", "--vgic-seeds", "1")
    assert result.ret == 2  # interrupted: errors during collection
    result.assert_outcomes(errors=1)
    out = result.stdout.str()
    result.stdout.fnmatch_lines([
        "*ERROR collecting scen/broken.yaml*",
        "*scen/broken.yaml:3:3: $.vm.lrz: expected one of the known fields, "
        "got unknown field 'lrz'*",
    ])
    assert "Traceback" not in out


def test_seeds_come_from_the_ini_option(pytester):
    pytester.makeini("[pytest]\nvgic_scenarios = scen\nvgic_seeds = 1\n")
    write(pytester.path / "scen", {"wrong.yaml": DEFAULT.replace(CONTROL,
                                                                  "no-spi-tracking: pass")})
    result = pytester.runpytest("-k", "no-spi-tracking")
    result.assert_outcomes(failed=1, deselected=1)
    result.stdout.fnmatch_lines(["*deactivation-lost in 1/1*"])


def test_a_file_named_on_the_command_line_selects_one_variant(pytester):
    """`pytest FILE.yaml::VARIANT` runs that item, with no scenario folder configured."""
    write(pytester.path / "mysc", {"small.yaml": SMALL})
    result = pytester.runpytest("mysc/small.yaml::pre-series", "--vgic-seeds", "1", "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*mysc/small.yaml::pre-series PASSED*"])


def test_vgic_scenarios_alone_collects_only_the_scenarios(pytester):
    """Other tests under the current folder are not collected too."""
    write(pytester.path / "scen", {"small.yaml": SMALL})
    pytester.makepyfile(test_other="def test_other():\n    pass\n")
    result = pytester.runpytest("--vgic-scenarios", "scen", "--collect-only", "-q")
    items = [line for line in result.outlines if "::" in line]
    assert len(items) == 3 and all(i.startswith("scen/small.yaml::") for i in items), items
    result = pytester.runpytest("--vgic-scenarios", "scen", "test_other.py", "--collect-only",
                                "-q")
    assert len([line for line in result.outlines if "::" in line]) == 4


def test_the_failed_line_names_the_verdict(pytester):
    """pytest's short summary says which verdict failed and what was found."""
    write(pytester.path / "scen", {
        "wrong.yaml": DEFAULT.replace(CONTROL, "no-spi-tracking: pass"),
    })
    result = pytester.runpytest("--vgic-scenarios", "scen", "--vgic-seeds", "1", "-rf", "-vv")
    result.stdout.fnmatch_lines([
        "FAILED scen/wrong.yaml::no-spi-tracking - verdict no-spi-tracking: expected pass, "
        "found deactivation-lost, expectation, guest-assertion*"])
