"""PCT is tested for what defines it: its bound on planted bugs and its d-1 change points."""

import contextlib
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.runtime.programs import lost_update, ordering_bug
from vgic_actors.runtime import PCT, HypothesisSource, RandomWalk, Replay, run


def runs_for_99(n: int, k: int, d: int) -> int:
    """ln(100) / p with PCT's bound p >= 1 / (n * k^(d-1))."""
    return math.ceil(math.log(100) * n * k ** (d - 1))


def lost(box) -> bool:
    """The lost update happened: two increments left the counter at 1."""
    assert box.x is not None
    return box.x.peek() != 2


def max_decisions(setup, seeds=20) -> int:
    return max(len(run(setup, RandomWalk(s)).choices) for s in range(seeds))


def test_depth1_ordering_bug_found_within_the_bound():
    """A depth-1 bug is hit within ln(100)*n runs, and at a rate above 1/n."""
    setup, box = ordering_bug(noise=2)
    n, k = 4, max_decisions(setup)
    hits = []
    for seed in range(200):
        run(setup, PCT(seed, depth=1, k=k))
        hits.append(box.bug)
    assert any(hits[: runs_for_99(n, k, 1)])
    assert sum(hits) / len(hits) >= 1 / n


def test_depth2_lost_update_found_within_the_bound_and_never_at_depth1():
    """A depth-2 atomicity bug needs a change point: PCT d=2 finds it, d=1 cannot."""
    setup, box = lost_update(noise=1)
    n, k = 3, max_decisions(setup)
    bound = runs_for_99(n, k, 2)
    found_at = None
    for seed in range(bound):
        run(setup, PCT(seed, depth=2, k=k))
        if lost(box):
            found_at = seed
            break
    assert found_at is not None and found_at < bound
    rate = 0
    for seed in range(200):
        run(setup, PCT(seed, depth=2, k=k))
        rate += lost(box)
    assert rate / 200 >= 1 / (n * k)
    hits = 0
    for seed in range(200):
        run(setup, PCT(seed, depth=1, k=k))
        hits += lost(box)
    assert hits == 0


def test_pct_uses_d_minus_1_change_points():
    """PCT draws d-1 distinct change points in 1..k and applies each one once."""
    setup, _ = lost_update(noise=3)
    k = max_decisions(setup)
    for seed in range(30):
        for d in (1, 2, 3, 4):
            strategy = PCT(seed, depth=d, k=k)
            assert len(strategy.change_points) == d - 1
            assert all(1 <= cp <= k for cp in strategy.change_points)
            assert sorted(strategy.change_points.values()) == list(range(1, d))
            run(setup, strategy)
            reached = sum(1 for cp in strategy.change_points if cp <= strategy.decisions)
            assert strategy.drops == reached <= d - 1


def test_pct_priorities_decide_the_order():
    """With no change point the highest-priority actor runs to completion first."""
    setup, box = lost_update(noise=0)
    for seed in range(20):
        strategy = PCT(seed, depth=1, k=10)
        result = run(setup, strategy)
        assert box.x is not None and box.x.peek() == 2
        assert result.choices.values  # both actors were enabled at the decisions


def test_hypothesis_shrinks_the_lost_update_schedule():
    """Hypothesis drives the choices, finds the lost update and shrinks its choice log."""
    setup, box = lost_update(noise=2)
    failing = []

    @settings(max_examples=300, deadline=None, database=None, derandomize=True)
    @given(st.data())
    def no_lost_update(data):
        result = run(setup, HypothesisSource(data))
        if lost(box):
            failing.append(result.choices)
            raise AssertionError("lost update")

    with contextlib.suppress(AssertionError):
        no_lost_update()
    assert failing, "Hypothesis did not find the lost update"
    shrunk = failing[-1]
    assert shrunk.deviations() <= 3
    run(setup, Replay(shrunk))
    assert box.x is not None and box.x.peek() == 1


def test_pct_with_spin_yield_never_starves_a_flag_handshake():
    """A spin-wait that declares itself (spin_yield) cannot starve the actor it waits for."""
    from vgic_actors.runtime import PCT, Outcome, point, run, spin_yield

    def setup(sched):
        flag = {"v": 0}

        async def waiter():
            while flag["v"] == 0:
                await point("spin")
                spin_yield()

        async def setter():
            for _ in range(20):
                await point("work")
            flag["v"] = 1

        sched.spawn("waiter", waiter)
        sched.spawn("setter", setter)

    outcomes = {run(setup, PCT(seed, 3, 100), max_steps=5000).outcome for seed in range(200)}
    assert outcomes == {Outcome.QUIESCENT}


@settings(max_examples=200)
@given(seed=st.integers(0, 2**32), sizes=st.lists(st.integers(1, 1000), min_size=1, max_size=30))
def test_below_draws_what_randrange_draws(seed: int, sizes: list[int]) -> None:
    """strategies.below is randrange(n) on the same stream: every seed's schedule is kept."""
    import random

    from vgic_actors.runtime.strategies import below

    ours, theirs = random.Random(seed), random.Random(seed)
    assert [below(ours, n) for n in sizes] == [theirs.randrange(n) for n in sizes]
    assert ours.random() == theirs.random()  # and leaves the stream where randrange does
