"""TrioBatch follows Trio's run loop: whole batches, oldest first or reversed."""

from __future__ import annotations

from vgic_actors.runtime.strategies import Schedulable, TrioBatch, make_strategy


def items(n: int, st: TrioBatch) -> list[Schedulable]:
    out = [Schedulable() for _ in range(n)]
    for it in out:
        st.register(it)
    return out


def test_a_batch_runs_every_enabled_item_once_in_queue_order_or_reversed():
    """Each batch is the enabled set in run-queue order, or that order reversed; no item
    runs twice before the batch is used up."""
    orders = set()
    for seed in range(40):
        st = TrioBatch(seed)
        xs = items(4, st)
        picked = [xs[st.choose(xs)] for _ in range(4)]
        assert sorted(map(id, picked)) == sorted(map(id, xs))
        orders.add(tuple(xs.index(p) for p in picked))
    assert orders == {(0, 1, 2, 3), (3, 2, 1, 0)}


def test_items_no_longer_enabled_are_skipped_and_the_next_batch_starts_fresh():
    """An item that left the enabled set is skipped; once the batch is used up, the next
    is formed from every enabled item by when it last ran (oldest or newest first)."""
    for seed in range(10):
        st = TrioBatch(seed)
        xs = items(3, st)
        st.choose(xs)
        gone, nxt = reversed(st._batch)  # the rest of the batch, in the order it runs
        enabled = [x for x in xs if x is not gone]
        assert enabled[st.choose(enabled)] is nxt
        assert xs[st.choose(xs)] in (gone, nxt)  # the oldest (never ran) or the newest
    assert TrioBatch(9).describe() == make_strategy("trio-batch", 9).describe()
