"""The README's two set-up commands stay true and CI runs the same test command."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    """The lines of the README's first fenced code block."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```sh\n(.*?)```", text, re.S)
    assert block, "README.md has no ```sh block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_readme_opens_with_two_commands():
    """The first block holds exactly an install-and-run line and an install-and-test line."""
    cmds = readme_commands()
    assert len(cmds) == 2
    assert "vgic-actors" in cmds[0] and "pip install" in cmds[0]
    assert "pytest" in cmds[1] and "'.[test]'" in cmds[1]


def test_ci_runs_the_readme_test_command_verbatim():
    """.ci/run executes the README's test command, not a look-alike."""
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert readme_commands()[1] in ci


def test_ci_runs_the_readme_main_job():
    """.ci/run also runs the README's main job (the last word(s) of the first command)."""
    main_job = readme_commands()[0].split(".venv/bin/")[-1]
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert any(line.strip() == f".venv/bin/{main_job}" for line in ci_lines)
