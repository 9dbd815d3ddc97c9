"""The command line: version, help, usage errors and the self-check."""

import io

from vgic_actors import __version__
from vgic_actors.cli import main


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return main(list(argv), stdout=out, stderr=err), out.getvalue(), err.getvalue()


def test_version_prints_the_package_version(capsys):
    """--version prints the version and exits 0."""
    code, _, _ = run("--version")
    assert code == 0
    assert __version__ in capsys.readouterr().out


def test_unknown_subcommand_is_a_usage_error(capsys):
    """An unknown subcommand exits 2 with a usage message and no traceback."""
    code, _, _ = run("no-such-command")
    assert code == 2
    err = capsys.readouterr().err
    assert "invalid choice" in err and "Traceback" not in err


def test_no_subcommand_prints_help_and_exits_2():
    """With no subcommand the help is printed and the status says usage."""
    code, out, _ = run()
    assert code == 2 and "selfcheck" in out


def test_selfcheck_reports_the_lost_deactivation_and_the_trap():
    """selfcheck passes on the model and explains both halves of the story."""
    code, out, _ = run("selfcheck")
    assert code == 0
    assert "lost deactivation" in out and "ICH_HCR_EL2.TDIR" in out
    assert out.rstrip().endswith("4 passed, 0 failed")


def test_bench_prints_model_and_trio_rates_and_their_ratio():
    """bench prints one JSON object with both rates and the ratio between them."""
    import json

    code, out, _ = run("bench", "--steps", "2000", "--actors", "3")
    assert code == 0
    result = json.loads(out)
    assert result["model_steps"] >= 2000 and result["trio_hops"] == 2000
    assert result["model_steps_per_s"] > 0 and result["trio_hops_per_s"] > 0
    assert abs(result["ratio"] - result["model_steps_per_s"] / result["trio_hops_per_s"]) < 0.01
    assert abs(result["ring_ratio"] - result["model_steps_per_s"] / result["ring_hops_per_s"]) \
        < 0.01
    scenario = result["scenario"]
    assert scenario["scenario"] == "default-asym-dir" and scenario["runs"] >= 1
    assert scenario["steps_per_run"] * scenario["runs"] >= 2000
    steps_per_s = 1e6 / scenario["us_per_step"]
    assert abs(scenario["ratio"] - steps_per_s / result["trio_hops_per_s"]) < 0.01


def test_bench_rejects_nonsense_sizes():
    """bench --steps 0 is a usage error."""
    code, _, err = run("bench", "--steps", "0")
    assert code == 2 and err.startswith("error:")


def test_variants_lists_every_variant_with_its_story():
    """variants prints one line per catalogue entry, starting with its name."""
    from vgic_actors.kvm.variants import VARIANTS

    code, out, _ = run("variants")
    lines = out.splitlines()
    assert code == 0 and len(lines) == len(VARIANTS)
    assert [line.split()[0] for line in lines] == list(VARIANTS)
    assert "[K1]" in next(line for line in lines if line.startswith("v4-applied"))


def test_variants_verbose_shows_differing_switches():
    """variants -v shows, under v4-applied, the EOIcount walk start switch."""
    _, out, _ = run("variants", "-v")
    assert "eoicount_walk_start: 'after_last_lr' -> 'head'" in out


def test_debug_shows_the_traceback_but_keeps_the_exit_status(tmp_path):
    """--debug adds the traceback of a bad-input error; the status stays 2."""
    missing = str(tmp_path / "nope.yaml")
    code, _, err = run("--debug", "validate", missing)
    assert code == 2 and "error:" in err
    code, _, err = run("--debug", "run", missing)
    assert code == 2 and "Traceback" in err and err.rstrip().splitlines()[-1].startswith("error:")


def test_every_help_lists_every_exit_status():
    """vgic-actors --help and each subcommand's (logs ones too) name 0, 1, 2 and 130."""
    import argparse

    from vgic_actors.cli import build_parser

    def walk(parser):
        yield parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for child in action.choices.values():
                    yield from walk(child)

    parsers = list(walk(build_parser()))
    assert len(parsers) > 15
    for parser in parsers:
        text = parser.format_help()
        for code in ("0 ok", "1 a finding", "2 bad input", "130 interrupted"):
            assert code in " ".join(text.split()), (parser.prog, code)


def test_every_command_that_prints_a_result_has_json(tmp_path):
    """--json gives one JSON document on stdout, with the same exit status."""
    import json

    scen = "scenarios/asym_dir.yaml"
    out = tmp_path / "c"
    cases = [
        (("validate", "--json", scen), 0, "files"),
        (("variants", "--json"), 0, "variants"),
        (("explore", scen, "--json", "--max-runs", "2", "--out", str(tmp_path / "e.json")),
         1, "verdict"),
        (("soak", "--json", "--variant", "no-spi-tracking", "--runs", "24", "--out", str(out)),
         1, "next"),
    ]
    for argv, status, key in cases:
        code, stdout, err = run(*argv)
        assert code == status, (argv, err)
        assert key in json.loads(stdout), argv
    finding = json.loads(run("soak", "--json", "--variant", "no-spi-tracking", "--runs", "24",
                             "--out", str(tmp_path / "d"))[1])["next"].split()[-1]
    code, stdout, _ = run("replay", finding, "--json", "--log", str(tmp_path / "r.jsonl"))
    assert code == 0 and json.loads(stdout)["came_back"] is True
    code, stdout, _ = run("shrink", finding, "--json", "--budget", "2")
    assert code == 0 and json.loads(stdout)["written"] is True
    code, stdout, _ = run("logs", "check", "--json", str(tmp_path / "r.jsonl"))
    assert code == 1 and json.loads(stdout)["violations"]
