"""Cells model the kernel's atomics; locks block, hand over FIFO and check the order."""

import pytest

from vgic_actors.errors import LockOrderError, OutsideActorError
from vgic_actors.runtime import (
    AtomicInt,
    Mode,
    Outcome,
    RandomWalk,
    Replay,
    SpinLock,
    VcpuMode,
    VcpuRequests,
    point,
    run,
)


def run_body(body, strategy=None):
    def setup(sched):
        sched.spawn("a", body)

    result = run(setup, strategy or Replay([]))
    assert result.outcome is Outcome.QUIESCENT
    return result


def test_atomic_operations_return_what_the_kernel_returns():
    """fetch_inc returns the old value; dec_if_positive returns old-1 and stops at 0."""
    x = AtomicInt("x")
    seen = []

    async def body():
        seen.append(await x.fetch_inc())
        seen.append(await x.fetch_inc())
        seen.append(await x.dec_if_positive())
        seen.append(await x.dec_if_positive())
        seen.append(await x.dec_if_positive())
        seen.append(await x.read())

    run_body(body)
    assert seen == [0, 1, 1, 0, -1, 0]


def test_every_cell_access_is_one_decision_point():
    """Each access is an interleaving point: the runs differ only in the labelled order."""
    x = AtomicInt("x")

    def setup(sched):
        async def body():
            for _ in range(3):
                await x.fetch_inc()

        sched.spawn("a", body)
        sched.spawn("b", body)

    result = run(setup, RandomWalk(0))
    assert x.peek() == 6
    assert result.steps == 2 + 6  # two starts + six accesses, nothing else


def test_requests_and_mode():
    """Request bits set/test/clear; the cmpxchg flips only IN_GUEST_MODE."""
    reqs, mode = VcpuRequests(0), VcpuMode(0)
    seen = []

    async def body():
        await reqs.kvm_make_request(3)
        seen.append(await reqs.kvm_request_pending())
        seen.append(await reqs.kvm_check_request(3))
        seen.append(await reqs.kvm_check_request(3))
        seen.append(await mode.cmpxchg(Mode.IN_GUEST_MODE, Mode.EXITING_GUEST_MODE))
        await mode.smp_store_mb(Mode.IN_GUEST_MODE)
        seen.append(await mode.cmpxchg(Mode.IN_GUEST_MODE, Mode.EXITING_GUEST_MODE))
        seen.append(await mode.read())

    run_body(body)
    assert seen == [True, True, False, Mode.OUTSIDE_GUEST_MODE, Mode.IN_GUEST_MODE,
                    Mode.EXITING_GUEST_MODE]


def test_lock_blocks_and_hands_over_fifo():
    """A contended acquirer is not enabled; release hands the lock to the oldest waiter."""
    lock = SpinLock("l")
    order = []

    def setup(sched):
        async def holder():
            async with lock:
                for _ in range(5):
                    await point("inside")
                order.append("holder")

        def waiter(name):
            async def body():
                async with lock:
                    order.append(name)
            return body

        sched.spawn("holder", holder)
        sched.spawn("w1", waiter("w1"))
        sched.spawn("w2", waiter("w2"))

    # holder takes the lock first (canonical order), then w1 and w2 queue in id order
    result = run(setup, Replay([0, 0, 1, 1, 1]))
    assert result.outcome is Outcome.QUIESCENT
    assert order == ["holder", "w1", "w2"]


def test_lock_order_inversion_raises():
    """Taking an outer-rank lock while holding an inner one is a LockOrderError."""
    ap, irq = SpinLock("ap_list_lock", rank=1), SpinLock("irq_lock", rank=2)

    async def body():
        async with irq:
            await ap.acquire()

    with pytest.raises(LockOrderError, match="ap_list_lock"):
        run_body(body)


def test_same_class_locks_go_in_vcpu_id_order():
    """Two ap_list locks: lower vcpu_id first is fine, the reverse raises."""
    ap0, ap1 = SpinLock("ap0", rank=1, sub=0), SpinLock("ap1", rank=1, sub=1)

    async def good():
        async with ap0, ap1:
            pass

    run_body(good)

    async def bad():
        async with ap1, ap0:
            pass

    with pytest.raises(LockOrderError):
        run_body(bad)


def test_release_by_non_owner_and_finishing_with_a_lock_raise():
    """Releasing an unheld lock or ending while holding one is a model bug."""
    lock = SpinLock("l")

    async def release_unheld():
        lock.release()

    with pytest.raises(LockOrderError):
        run_body(release_unheld)

    lock2 = SpinLock("l2")

    async def keep():
        await lock2.acquire()

    with pytest.raises(LockOrderError, match="finished holding"):
        run_body(keep)


def test_point_outside_an_actor_raises():
    """point() needs a current actor."""
    import trio

    async def main():
        await point("nowhere")

    with pytest.raises(OutsideActorError):
        trio.run(main)
