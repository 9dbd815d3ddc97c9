"""``logs diff``: first divergence of a passing and a failing run; equal runs; determinism."""

from __future__ import annotations

from pathlib import Path

import msgspec

from tests.logs.conftest import cli, record


def test_merged_and_no_spi_tracking_part_at_the_active_spis_increment(
        passing_log: Path, failing_log: Path) -> None:
    """Same seed: the runs agree until merged increments active_spis while queueing SPI 32."""
    status, out, _ = cli("logs", "diff", str(passing_log), str(failing_log))
    assert status == 1
    assert "header variant: merged vs no-spi-tracking" in out
    assert "first divergence after" in out
    a_then = out.split("A then:")[1].split("B then:")[0]
    b_then = out.split("B then:")[1]
    assert "dist.active_spis fetch_add 0 -> 1" in a_then
    assert "queue INTID 32 on vcpu0 ap_list (0->1: broadcast)" in a_then
    assert "queue INTID 32 on vcpu0 ap_list" in b_then and "broadcast" not in b_then
    status, js, _ = cli("logs", "diff", "--ignore-kind", "ActorStepped", "--json",
                        str(passing_log), str(failing_log))
    d = msgspec.json.decode(js)["divergence"]
    assert status == 1 and d["reason"] == "CellAccessed in A, LockReleased in B"


def test_same_seed_gives_a_byte_identical_log(tmp_path: Path, failing_log: Path) -> None:
    """Determinism: the same scenario, variant and seed write the same bytes."""
    (tmp_path / "again").mkdir()
    again = record("asym_dir.yaml", "no-spi-tracking", 0, tmp_path / "again" / "fail.jsonl")
    assert again.read_bytes() == failing_log.read_bytes()
    status, out, _ = cli("logs", "diff", str(failing_log), str(again))
    assert status == 0 and "same:" in out


def test_a_shorter_log_diverges_where_it_ends(tmp_path: Path, failing_log: Path) -> None:
    """A log cut after 50 lines diverges at its end."""
    short = tmp_path / "short.jsonl"
    short.write_bytes(b"".join(failing_log.read_bytes().splitlines(keepends=True)[:50]))
    status, out, _ = cli("logs", "diff", str(failing_log), str(short))
    assert status == 1 and f"{short} ends here" in out and "after 49 matching" in out
