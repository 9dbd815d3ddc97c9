"""Soak profiles are untrusted text too: every limit is one located line, exit 2."""

from __future__ import annotations

import io

import pytest

from vgic_actors.cli import main


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(("text", "where", "message"), [
    ("interrupts: [1, 100000]\n", "1:13: $.interrupts", "at most 64 interrupts"),
    ("priorities: []\n", "1:13: $.priorities", "got an empty list"),
    ("max_steps: 99999999\n", "1:12: $.max_steps", "<= 1000000"),
    ('strategy: "pct:\\u00b2"\n', "1:11: $.strategy", "pct:D[:K]"),
    ("vcpus: [1, 99999999999999999999999]\n", "1:12: $.vcpus[1]", "at most 64 bits"),
])
def test_a_hostile_profile_is_one_located_line(tmp_path, text, where, message):
    """Bounds that keep generation finite and runs valid are checked before any run."""
    profile = tmp_path / "p.yaml"
    profile.write_text(text, encoding="utf-8")
    code, out, err = cli("soak", "--profile", str(profile), "--runs", "1", "--out",
                         str(tmp_path / "o"))
    assert (code, out) == (2, "") and err.count("\n") == 1
    assert err.startswith(f"error: {profile}:{where}: expected ") and message in err
    assert not (tmp_path / "o" / "results.jsonl").exists()
