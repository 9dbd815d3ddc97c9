"""atomic_t is a C int: the model's counter wraps at 32 bits as the kernel's does."""

from vgic_actors.runtime import AtomicInt, Outcome, Replay, run


def test_the_counter_wraps_at_32_bits_and_dec_if_positive_leaves_a_negative_one():
    seen: list[int] = []
    top = AtomicInt("c", 2**31 - 1)

    async def body():
        seen.append(await top.fetch_inc())       # INT_MAX + 1 wraps to INT_MIN
        seen.append(top.peek())
        minus_one = AtomicInt("d", 0xFFFF_FFFF)  # 2^32 - 1 increments from 0: -1
        seen.append(minus_one.peek())
        seen.append(await minus_one.dec_if_positive())  # -2: not stored
        seen.append(await minus_one.fetch_inc())        # the next one takes it to 0
        seen.append(minus_one.peek())

    def setup(sched):
        sched.spawn("a", body)

    assert run(setup, Replay([])).outcome is Outcome.QUIESCENT
    assert seen == [2**31 - 1, -(2**31), -1, -2, -1, 0]
