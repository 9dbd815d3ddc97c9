"""``logs timeline``, ``logs irq`` and ``logs stats`` on real runs."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from tests.logs.conftest import cli
from vgic_actors.logs import LogReader, collect


def test_timeline_has_a_column_per_cpu_and_messages_in_flight(passing_log: Path) -> None:
    """Columns pcpu0, pcpu1, distributor; the queueing and the IPI in flight appear."""
    status, out, _ = cli("logs", "timeline", "--width", "40", str(passing_log))
    assert status == 0
    head = out.splitlines()[0]
    assert head.index("pcpu0") < head.index("pcpu1") < head.index("distributor")
    assert "in flight" in head
    assert "queue INTID 32 on vcpu0 ap_list" in out
    assert any("ipi pcpu0>pcpu1" in line for line in out.splitlines())  # MMIO on vCPU0
    assert "step vcpu" not in out  # scheduling steps only with --all
    _, everything, _ = cli("logs", "timeline", "--all", str(passing_log))
    assert "step vcpu" in everything


def test_irq_life_on_the_failing_run(failing_log: Path) -> None:
    """SPI 32: acked and priority-dropped on vcpu0, deactivated untrapped by vcpu1."""
    status, out, _ = cli("logs", "irq", "32", str(failing_log))
    assert status == 0
    assert "vcpu0 IAR -> INTID 32" in out
    assert "vcpu1 DIR INTID 32 (not trapped)" in out
    assert "deactivations: vcpu1 DIR not trapped x1" in out
    assert "DIR emulated: none" in out


def test_irq_life_on_the_fixed_run_shows_the_broadcast(passing_log: Path) -> None:
    """On merged the queueing raises active_spis and kicks every vCPU; the DIR traps."""
    _, out, _ = cli("logs", "irq", "32", str(passing_log))
    assert "~ dist.active_spis fetch_add 0 -> 1" in out
    assert "~ kick vcpu1: ipi (KVM_REQ_IRQ_PENDING)" in out
    assert "vcpu1 DIR INTID 32 (trapped)" in out
    assert "emulate DIR INTID 32 from vcpu1: icactiver (owner vcpu0)" in out
    _, js, _ = cli("logs", "irq", "32", "--json", str(passing_log))
    rows = [msgspec.json.decode(line) for line in js.splitlines()]
    assert any(r["caused"] and r["kind"] == "KickSent" for r in rows)
    _, none, _ = cli("logs", "irq", "77", str(passing_log))
    assert "no event names INTID 77" in none


def test_stats_counts_and_tdir_time(passing_log: Path, failing_log: Path) -> None:
    """Counts add up to the lines; TDIR time is positive on merged and zero without tracking."""
    good = collect(LogReader(passing_log))
    bad = collect(LogReader(failing_log))
    assert good.events == len(passing_log.read_bytes().splitlines())
    assert sum(good.by_kind.values()) == good.events == sum(good.by_lane.values())
    assert good.broadcasts == 1 and bad.broadcasts == 0
    assert good.vcpus["vcpu1"].tdir_vt > 0
    assert all(t.tdir_vt == 0 for t in bad.vcpus.values())
    assert sum(good.exits.values()) == good.by_kind["GuestExited"]
    assert good.guest_deactivations == {"dir trapped": 1}
    status, out, _ = cli("logs", "stats", "--json", str(passing_log))
    assert status == 0 and msgspec.json.decode(out)["outcome"] == "quiescent"
    _, text, _ = cli("logs", "stats", str(failing_log))
    assert "guest deactivations   dir not trapped 1" in text


def test_requests_are_named_as_the_kernel_names_them(passing_log: Path, tmp_path: Path) -> None:
    """KVM_REQ_IRQ_PENDING and friends in the table and the trace, never a bare number."""
    import re

    _, table, _ = cli("logs", "filter", "--pretty", "--kind", "RequestMade,RequestChecked,"
                      "KickSent", str(passing_log))
    assert "KVM_REQ_IRQ_PENDING" in table and "KVM_REQ_VGIC_PROCESS_UPDATE" in table
    assert not re.search(r"\b(req|request) \d", table), table
    trace = tmp_path / "t.json"
    cli("logs", "perfetto", str(passing_log), "-o", str(trace))
    assert "broadcast leg (KVM_REQ_" in trace.read_text()
    assert not re.search(r"\breq \d", trace.read_text())


@pytest.mark.parametrize("chunk", [300, 4096, 1 << 20])
def test_stats_block_path_gives_what_the_line_by_line_path_gives(
        passing_log: Path, failing_log: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        chunk: int) -> None:
    """Counting whole blocks in C (stats._bulk) changes no figure and no reported problem,
    on clean logs and on one with a bad line, a CRLF line, a contended lock, a line holding
    two events and one with a negative step mixed in."""
    from vgic_actors.logs import reader as reader_mod
    from vgic_actors.logs import stats as stats_mod
    from vgic_actors.logs.reader import LogReader

    lines = passing_log.read_bytes().splitlines()
    odd = [*lines[:9], b'{"ev":"GuestExited","vcpu":"x","actor":"pcpu0"}',
           b'{"ev":"LockAcquired","lock":"ap_list","contended":true,"step":3,"vt":3,'
           b'"actor":"pcpu1"}\r', *lines[9:]]
    exits = [ln for ln in lines if ln.startswith(b'{"ev":"GuestExited"')]
    odd[250:250] = [exits[0] + b"," + exits[0]]  # two values on one line
    odd[150:150] = [exits[1].replace(b'"step":', b'"step":-', 1)]  # a negative step
    mixed = tmp_path / "odd.jsonl"
    mixed.write_bytes(b"\n".join(odd) + b"\n")
    monkeypatch.setattr(reader_mod, "CHUNK", chunk)
    real = stats_mod._bulk
    used = []

    def counted(*args: object) -> bool:
        used.append(real(*args))  # type: ignore[arg-type]
        return used[-1]

    for log in (passing_log, failing_log, mixed):
        got = []
        for bulk in (counted, lambda *_: False):
            monkeypatch.setattr(stats_mod, "_bulk", bulk)
            problems: list[object] = []
            got.append((stats_mod.collect(LogReader(log, on_problem=problems.append)),
                        problems))
        assert got[0] == got[1]
        assert got[0][0].events > 100
    assert got[0][1] and got[0][0].contended_locks >= 1
    assert chunk == 1 << 20 or any(used)  # the block path ran on the later blocks
