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
