"""Deadlocks and livelocks come back as findings within the budget, never as hangs."""

import pytest

from vgic_actors.errors import LockOrderError
from vgic_actors.runtime import (
    AtomicInt,
    Mailbox,
    Outcome,
    RandomWalk,
    Replay,
    SpinLock,
    point,
    run,
    serve,
)


def abba(sched):
    first, second = SpinLock("A"), SpinLock("B")  # unranked: the lock-order check is off

    def taker(x, y):
        async def body():
            async with x:
                await point("between")
                async with y:
                    pass
        return body

    sched.spawn("t0", taker(first, second))
    sched.spawn("t1", taker(second, first))


def test_planted_deadlock_is_a_finding_with_every_actor_state():
    """ABBA locking deadlocks for some seeds; the run returns a deadlock finding."""
    findings = [run(abba, RandomWalk(s), max_steps=1000).finding for s in range(30)]
    found = [f for f in findings if f is not None]
    assert found, "no seed interleaved the two lock takers"
    f = found[0]
    assert f.kind == "deadlock" and f.step < 1000
    states = {a.name: (a.state, a.blocked_on, a.holds) for a in f.actors}
    assert states["t0"][0] == "blocked" and states["t1"][0] == "blocked"
    assert {tuple(states["t0"][2]), tuple(states["t1"][2])} == {("A",), ("B",)}
    assert all(a.last_points for a in f.actors)


def test_canonical_schedule_has_no_deadlock():
    """All-zero choices run each taker to completion: quiescent, no finding."""
    result = run(abba, Replay([]))
    assert result.outcome is Outcome.QUIESCENT and result.finding is None


def spinners(sched):
    flag = AtomicInt("flag")

    async def waiter():
        while await flag.read() == 0:
            pass

    sched.spawn("w0", waiter)
    sched.spawn("w1", waiter)


def test_planted_livelock_is_reported_at_the_budget():
    """Actors spinning forever exhaust the budget and yield a livelock finding."""
    result = run(spinners, RandomWalk(1), max_steps=500)
    assert result.outcome is Outcome.LIVELOCK and result.steps == 500
    assert result.finding is not None and result.finding.kind == "livelock"
    assert [a.state for a in result.finding.actors] != ["done", "done"]
    assert "flag.read" in result.finding.actors[0].last_points


def test_idle_server_and_finished_clients_are_quiescent():
    """A server blocked on its empty mailbox is idle: the run ends quiescent."""
    replies = []

    def setup(sched):
        box = Mailbox(sched, "srv")

        async def handler(msg):
            return msg.payload * 2

        async def client():
            replies.append(await box.request(21, kind="double"))

        sched.spawn("srv", lambda: serve(box, handler))
        sched.spawn("client", client)

    result = run(setup, RandomWalk(0))
    assert result.outcome is Outcome.QUIESCENT and replies == [42]
    assert result.stats.messages_sent == 2 and result.stats.messages_delivered == 2


def test_lost_reply_is_a_deadlock():
    """A requester whose server never answers is pending work: deadlock, not quiescence."""

    def setup(sched):
        box = Mailbox(sched, "void")

        async def client():
            await box.request(1, kind="ping")

        sched.spawn("client", client)

    result = run(setup, RandomWalk(0))
    assert result.outcome is Outcome.DEADLOCK
    assert result.finding is not None
    assert result.finding.actors[0].blocked_on == "reply:ping"


def test_work_pending_hook_turns_quiescence_into_deadlock():
    """A hot liveness monitor (work_pending) makes an idle end a deadlock finding."""

    def setup(sched):
        async def body():
            await point("x")

        sched.spawn("a", body)
        sched.work_pending = lambda: True

    assert run(setup, RandomWalk(0)).outcome is Outcome.DEADLOCK


def test_model_exception_propagates_unwrapped():
    """A model bug inside an actor surfaces as its own exception, not a hang."""

    def setup(sched):
        lock = SpinLock("l", rank=1)

        async def body():
            async with lock:
                await lock.acquire()

        sched.spawn("a", body)

    with pytest.raises(LockOrderError, match="twice"):
        run(setup, RandomWalk(0))


def test_waiting_on_an_uncontrolled_trio_primitive_is_a_model_error_not_a_hang():
    """A model task blocked on trio.Event (outside the scheduler) raises instead of hanging."""
    import pytest
    import trio

    from vgic_actors.errors import RuntimeModelError
    from vgic_actors.runtime import RandomWalk, point, run

    def setup(sched):
        async def stuck():
            await point("x")
            await trio.Event().wait()

        sched.spawn("stuck", stuck)

    with pytest.raises(RuntimeModelError, match="stuck blocked on a Trio primitive"):
        run(setup, RandomWalk(0))


def test_an_ended_run_tears_down_parked_actors_and_runs_their_finally_blocks():
    """A deadlocked run ends with actors parked; each one's finally block runs, and a point
    taken there does not resume the run (no further step, no hang)."""
    from vgic_actors.runtime import RandomWalk, current_actor, run

    cleaned = []

    def setup(sched):
        async def waiter(name):
            try:
                await point(f"{name}:before")
                await sched.block(current_actor(), "never woken")
            finally:
                cleaned.append(name)
                await point(f"{name}:in-finally")  # raises: the run has ended

        for name in ("a", "b"):
            sched.spawn(name, lambda name=name: waiter(name))

    result = run(setup, RandomWalk(3))
    assert result.outcome.value == "deadlock"
    assert sorted(cleaned) == ["a", "b"]
    assert result.steps == result.finding.step  # nothing ran after the end


def test_an_actor_spawned_during_the_run_starts_when_first_chosen():
    """A child spawned from inside the run takes its points and finishes like the others."""
    from vgic_actors.runtime import RandomWalk, run

    order = []

    def setup(sched):
        async def child():
            await point("child")
            order.append("child")

        async def parent():
            await point("parent")
            sched.spawn("child", child)
            await point("parent:after")
            order.append("parent")

        sched.spawn("parent", parent)

    for seed in range(6):
        order.clear()
        result = run(setup, RandomWalk(seed))
        assert result.outcome.value == "quiescent" and sorted(order) == ["child", "parent"]
