"""Events round-trip through the log; replay reports misfits; timers fire in virtual time."""

import io
import itertools
import json

import structlog

from tests.runtime.programs import toy_vm
from vgic_actors.events import (
    ActorStepped,
    Event,
    RunEnded,
    RunStarted,
    decode_event,
    decode_lines,
    encode_event,
)
from vgic_actors.runtime import Outcome, RandomWalk, Replay, point, run, sleep
from vgic_actors.runtime._trio_determinism import self_test
from vgic_actors.runtime.eventlog import configure_event_log


def test_events_round_trip_and_tolerate_unknown_fields():
    """encode/decode is the identity; a newer field an old reader lacks is ignored."""
    ev = ActorStepped(step=3, vt=4, actor="pcpu0", label="x", choice=1, of=2)
    assert decode_event(encode_event(ev)) == ev
    line = json.loads(encode_event(ev))
    line["added_later"] = 1
    assert decode_event(json.dumps(line)) == ev


def test_log_stream_decodes_to_the_sink_events():
    """Every JSON line of the log is one event the sinks saw, in the same order."""
    seen, buf = [], io.BytesIO()
    run(toy_vm(2), RandomWalk(5), log=buf, sinks=[seen.append])
    decoded = list(decode_lines(buf.getvalue().splitlines()))
    assert decoded == seen
    assert isinstance(decoded[0], RunStarted) and isinstance(decoded[-1], RunEnded)
    assert all(isinstance(e, Event) for e in decoded)
    steps = [e.step for e in decoded]
    assert steps == sorted(steps)


def test_structlog_adapter_renders_plain_records_with_msgspec():
    """A non-event structlog call goes through JSONRenderer with the msgspec adapter."""
    buf = io.BytesIO()
    configure_event_log(buf)
    try:
        structlog.get_logger().info("hello", n=1)
    finally:
        structlog.reset_defaults()
    assert json.loads(buf.getvalue()) == {"event": "hello", "n": 1}


def test_logging_off_builds_no_events():
    """With no log and no sinks nothing is recorded (the emitter is off)."""
    result = run(toy_vm(2), RandomWalk(5), keep_events=1000)
    assert result.finding is None and result.steps > 0


def test_replay_reports_misalignment_and_overrun():
    """Out-of-range values fall back to 0 and are reported; a short log overruns."""
    good = run(toy_vm(2), RandomWalk(2))
    bad_values = list(good.choices.values)
    bad_values[3] = 99
    r = run(toy_vm(2), Replay(bad_values))
    assert r.replay is not None and r.replay.misaligned_at == 3
    assert r.replay.misaligned_value == 99 and "diverged at choice 3" in r.replay.describe()
    short = run(toy_vm(2), Replay(good.choices.values[:5]))
    assert short.replay is not None and short.replay.overrun > 0
    assert short.choices.values[5:] == [0] * (len(short.choices) - 5)


def test_timers_fire_in_virtual_time_and_periodic_ones_do_not_keep_a_run_alive():
    """sleep() jumps the clock; a periodic timer ticks only while work is pending."""
    ticks, woke = [], []

    def setup(sched):
        sched.call_every(10, lambda: ticks.append(sched.vt), name="tick")

        async def body():
            await point("a")
            await sleep(100)
            woke.append(sched.vt)

        sched.spawn("sleeper", body)

    result = run(setup, RandomWalk(0))
    assert result.outcome is Outcome.QUIESCENT
    assert woke and woke[0] >= 100
    assert 10 <= ticks[0] <= 12 and 9 <= len(ticks) <= 11
    assert all(b - a == 10 for a, b in itertools.pairwise(ticks))
    assert result.stats.timers_fired == len(ticks) + 1


def test_trio_determinism_self_test():
    """Same-seed uncontrolled Trio runs repeat and different seeds differ."""
    assert self_test()


def test_message_latency_bound_forces_delivery_in_virtual_time():
    """A message posted with latency L is delivered by vt + L + 1 even if nobody yields to it."""
    from vgic_actors.runtime import Mailbox, Outcome, Replay, point, run

    seen = {}

    def setup(sched):
        box = Mailbox(sched, "inbox")

        async def spinner():
            box.post("hello", kind="note", src="spinner", latency=7)
            start = sched.vt
            while not box.pending():
                await point("spin")
            seen["waited"] = sched.vt - start

        sched.spawn("spinner", spinner)

    result = run(setup, Replay([]), max_steps=1000)
    assert result.outcome is Outcome.QUIESCENT
    assert 7 <= seen["waited"] <= 7 + 2  # overdue at vt + 7, delivered, then seen


def test_replay_reports_where_the_enabled_set_first_differs():
    """A log replayed on a run whose enabled sets differ is flagged at the first such choice."""
    from vgic_actors.runtime import ChoiceLog, Replay

    replay = Replay(ChoiceLog(values=[1, 0], bounds=[2, 2]))

    class Item:
        prio = 0

    assert replay.choose([Item(), Item(), Item()]) == 1
    report = replay.report()
    assert report.diverged_at == 0 and not report.exact
    assert "diverged at choice 0" in report.describe()
