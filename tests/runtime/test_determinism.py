"""Seeded runs repeat exactly and a recorded choice log replays the run exactly."""

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.runtime.programs import toy_vm
from vgic_actors.events import RunStarted, decode_lines
from vgic_actors.runtime import PCT, HypothesisSource, RandomWalk, Replay, run

SEEDS = range(100)


def logged_run(setup, strategy, seed=0):
    buf = io.BytesIO()
    result = run(setup, strategy, seed=seed, log=buf)
    return result, buf.getvalue()


def body(stream: bytes) -> bytes:
    """The event stream without its header line (which names the strategy)."""
    return stream.split(b"\n", 1)[1]


def make(name: str, seed: int):
    return RandomWalk(seed) if name == "random" else PCT(seed, depth=3, k=150)


@pytest.mark.parametrize("strategy", ["random", "pct"])
def test_same_seed_same_choices_and_bytes_and_replay_is_exact(strategy):
    """For 100 seeds: two runs agree byte for byte; replaying the log reproduces the run."""
    shapes = set()
    for seed in SEEDS:
        r1, log1 = logged_run(toy_vm(3), make(strategy, seed), seed)
        r2, log2 = logged_run(toy_vm(3), make(strategy, seed), seed)
        assert r1.choices == r2.choices
        assert log1 == log2
        r3, log3 = logged_run(toy_vm(3), Replay(r1.choices), seed)
        assert r3.replay is not None and r3.replay.exact, r3.replay
        assert r3.choices == r1.choices
        assert body(log3) == body(log1)
        assert r1.outcome.value == "quiescent"
        shapes.add(tuple(r1.choices.values))
    assert len(shapes) > 90  # the seeds really explore different interleavings


def test_header_line_names_version_seed_and_strategy():
    """The first line of the log is RunStarted with the tool version, seed and strategy."""
    _, stream = logged_run(toy_vm(2), RandomWalk(7), seed=7)
    first = next(decode_lines(stream.splitlines()))
    assert isinstance(first, RunStarted)
    assert (first.seed, first.strategy, first.tool_version) == (7, "random(seed=7)", "0.1.0")


def test_logging_off_gives_the_same_run():
    """With no log and no sinks the decisions are those of the logged run."""
    logged, _ = logged_run(toy_vm(3), RandomWalk(3))
    quiet = run(toy_vm(3), RandomWalk(3))
    assert quiet.choices == logged.choices and quiet.steps == logged.steps


@settings(max_examples=30, deadline=None, database=None)
@given(st.data())
def test_hypothesis_fed_runs_replay_exactly(data):
    """A run whose choices Hypothesis drew replays exactly from its recorded log."""
    r1, log1 = logged_run(toy_vm(2), HypothesisSource(data))
    r2, log2 = logged_run(toy_vm(2), Replay(r1.choices))
    assert r2.replay is not None and r2.replay.exact
    assert body(log1) == body(log2)
