"""Execution contexts and the time bounds that follow from them (runtime/context.py)."""

import pytest

from vgic_actors.runtime import (
    PCT,
    ContextError,
    Ctx,
    Outcome,
    Pcpu,
    RandomWalk,
    Replay,
    SpinLock,
    TimingModel,
    get_cpu,
    hardirq,
    irqs_disabled,
    local_irq_save,
    point,
    preempt_disable,
    preempt_enable,
    put_cpu,
    run,
    timing_class,
    timing_model,
)
from vgic_actors.runtime.scheduler import current_actor

SEEDS = range(40)


def busy(n, label="busy"):
    async def body():
        for _ in range(n):
            await point(label)

    return body


def atomic_region_run(seed, timing, entry="get_cpu", others=3, steps=60, points=6):
    """One actor walks `points` points inside a region while `others` busy actors run."""
    seen = {}

    async def inside():
        if entry == "get_cpu":
            get_cpu("test_region")
        else:
            region = local_irq_save("test_region")
            region.__enter__()
        seen["ctx"] = current_actor().ctx.ctx
        for _ in range(points):
            await point("inside")
        if entry == "get_cpu":
            put_cpu("test_region")
        else:
            region.__exit__(None, None, None)

    def setup(sched):
        sched.spawn("atomic", inside)
        for n in range(others):
            sched.spawn(f"busy{n}", busy(steps))

    result = run(setup, RandomWalk(seed), timing=timing)
    assert result.outcome is Outcome.QUIESCENT
    return result, seen


@pytest.mark.parametrize("entry", ["get_cpu", "local_irq_save"])
def test_a_region_is_never_stalled_beyond_the_budget(entry):
    """Inside preempt-off or IRQs-off code the others take at most `stall_budget` steps
    between two of the region's steps, on every seed; unbounded timing exceeds it."""
    budget = 3
    model = TimingModel(stall_budget=budget)
    worst = 0
    for seed in SEEDS:
        result, seen = atomic_region_run(seed, model, entry)
        assert seen["ctx"] in (Ctx.PREEMPT_OFF, Ctx.IRQS_OFF)
        assert result.timing.max_stall <= budget
        assert not result.timing.events
        worst = max(worst, result.timing.max_stall)
    assert worst == budget  # the bound is reached, not merely respected by chance
    unbounded = max(atomic_region_run(s, timing_model("unbounded"), entry)[0].timing.max_stall
                    for s in SEEDS)
    assert unbounded > budget


def test_task_context_is_never_bounded():
    """Preemptible code may wait any number of steps: no forced run, no stall counted."""
    order = []

    async def task():
        order.append("task-start")
        await point("task")
        order.append("task-end")

    def setup(sched):
        sched.spawn("task", task)
        sched.spawn("busy", busy(30))

    result = run(setup, Replay([0, 1] + [0] * 40), timing=TimingModel(stall_budget=1))
    assert result.timing.max_stall == 0
    assert order == ["task-start", "task-end"]


def test_forced_runs_are_not_choices_and_replay_exactly():
    """A forced step is not recorded; the same seed gives the same choice log."""
    model = TimingModel(stall_budget=2)
    a, _ = atomic_region_run(5, model)
    b, _ = atomic_region_run(5, model)
    assert a.choices == b.choices
    assert len(a.choices.values) < a.steps


def test_spinlocks_hand_over_in_arrival_order():
    """A CPU releasing a lock cannot take it back ahead of a waiter already spinning:
    whoever was spinning first at a release is the next owner."""
    lock = SpinLock("l", flavour="spin_lock")
    got, promised = [], []
    handovers = 0

    def worker(name, rounds):
        async def body():
            for _ in range(rounds):
                await lock.acquire()
                got.append(name)
                await point("critical")
                promised.append(lock.waiters[0].name if lock.waiters else None)
                lock.release()
                await point("after")

        return body

    for seed in range(30):
        got.clear()
        promised.clear()

        def setup(sched):
            for name in "abc":
                sched.spawn(name, worker(name, 3))

        run(setup, RandomWalk(seed))
        for i, waiter in enumerate(promised[:-1]):
            if waiter is not None:
                handovers += 1
                assert got[i + 1] == waiter, (seed, got, promised)
    assert handovers > 20


def test_an_ipi_pends_across_an_irqs_off_region_and_is_handled_at_its_end():
    """Delivered while IRQs are off, the IPI's handler (a WAIT acknowledgement) runs at
    local_irq_restore, not at delivery."""
    order = []

    def setup(sched):
        pcpu = Pcpu(sched, 0, ipi_latency=1)

        async def cpu0():
            pcpu.bind(current_actor())
            with local_irq_save("region"):
                order.append("irqs-off")
                pcpu.ipi.post(lambda: order.append("acked"), kind="ipi", src="cpu1",
                              on_delivered=pcpu._delivered, latency=1)
                for _ in range(4):
                    await point("inside")
                order.append("delivered" if pcpu.ipi.pending() else "not-delivered")
            order.append("restored")

        sched.spawn("cpu0", cpu0, cpu=0)

    run(setup, Replay([]))
    assert order == ["irqs-off", "delivered", "acked", "restored"]


def test_contexts_nest_and_must_be_left_in_order():
    """Leaving the wrong region, or finishing inside one, is a model error."""

    async def wrong_order():
        preempt_disable("outer")
        get_cpu("inner")
        preempt_enable("outer")

    async def left_open():
        with hardirq("handler"):
            assert irqs_disabled()
        preempt_disable("forgotten")

    for body, message in ((wrong_order, "innermost region is get_cpu"),
                          (left_open, "finished inside preempt_disable")):
        with pytest.raises(ContextError, match=message):
            run(lambda sched, body=body: sched.spawn("a", body), Replay([]))


def planted_window(seed, timing):
    """A preempt-off region with a window between two stores; the racer needs more steps
    than the stall budget allows to get into it (a timing-window bug by construction)."""
    state = {"flag": 0, "seen": None}

    async def owner():
        get_cpu("planted_broadcast")
        state["flag"] = 1
        await point("leg")
        state["flag"] = 0
        put_cpu("planted_broadcast")

    async def racer():
        for _ in range(12):
            await point("work")
        state["seen"] = state["flag"]

    def setup(sched):
        sched.spawn("owner", owner)
        sched.spawn("racer", racer)

    result = run(setup, PCT(seed, 2, 20), timing=timing)
    return result, state["seen"] == 1


def test_a_finding_that_needs_a_stall_event_is_classed_timing_window():
    """Realistic timing never opens the planted window; adversarial timing opens it only
    with a host interrupt stretching the region, and the run is classed timing-window."""
    realistic = TimingModel(stall_budget=4)
    adversarial = timing_model("adversarial", stall_budget=4, stall_duration=16)
    assert not any(planted_window(s, realistic)[1] for s in range(60))
    hits = [r for r, hit in (planted_window(s, adversarial) for s in range(60)) if hit]
    assert hits
    for result in hits:
        assert result.timing.events and result.timing.events[0].kind == "host-irq"
        cls, needs = timing_class(result.timing, realistic)
        assert cls == "timing-window" and "host-irq on owner" in needs


def test_an_unbounded_ipi_latency_is_classed_timing_window():
    """A run whose IPI spent longer in flight than the realistic bound needed a delay: an
    interrupt sent without a bound, or any under unbounded timing. Bounded IPIs, and two
    regions waiting at once, stay within realistic timing by construction."""
    from vgic_actors.runtime import Timing

    assert timing_class(Timing(max_ipi_latency=3)) == ("ordering", "")
    assert timing_class(Timing(max_ipi_latency=11, max_stall=10)) == ("ordering", "")
    cls, needs = timing_class(Timing(unbounded_ipi_latency=40, max_ipi_latency=40))
    assert cls == "timing-window" and needs == "IPI latency 40 > 8"
    cls, needs = timing_class(Timing(mode="unbounded", max_ipi_latency=40, max_stall=30,
                                     max_stall_where="pcpu0 preempt-off in f"))
    assert needs == "stall 30 > 8 in pcpu0 preempt-off in f; IPI latency 40 > 8"


def test_sleeping_in_atomic_context_is_reported_with_its_call_chain():
    """A mutex or kvm_vcpu_block under IRQs off is a sleep-in-atomic violation; the same
    calls in task context are not."""
    from vgic_actors.runtime import WaitQueue

    mutex = SpinLock("config_lock", flavour="mutex")
    wq = WaitQueue("w")

    async def body():
        await mutex.acquire()  # task context: fine
        mutex.release()
        with local_irq_save("some_irqs_off_path"):
            await mutex.acquire()
            mutex.release()
            await wq.kvm_vcpu_block(lambda: True)

    result = run(lambda sched: sched.spawn("a", body), Replay([]))
    got = [(v.invariant, v.message.split(",")[0]) for v in result.context_violations]
    assert got == [("sleep-in-atomic", "mutex_lock(config_lock) may sleep"),
                   ("sleep-in-atomic", "kvm_vcpu_block may sleep")]
    assert all(v.context.startswith("irqs-off: local_irq_save(some_irqs_off_path)")
               for v in result.context_violations)


def test_a_spinlock_taken_in_hardirq_and_with_irqs_on_is_inconsistent():
    """lockdep's {IN-HARDIRQ-W} -> {HARDIRQ-ON-W}; an irqsave lock used both ways is fine."""
    plain = SpinLock("plain", flavour="spin_lock")
    safe = SpinLock("safe", flavour="raw_spin_lock_irqsave")

    async def body():
        for lock in (plain, safe):
            with hardirq("a_handler"):
                await lock.acquire()
                lock.release()
            await lock.acquire()
            lock.release()

    result = run(lambda sched: sched.spawn("a", body), Replay([]))
    assert [(v.invariant, v.message.split(" ")[0]) for v in result.context_violations] == [
        ("inconsistent-lock-state", "plain")]


def test_an_interrupt_that_broadcasts_on_a_broadcasting_cpu_reenters_the_kick_mask():
    """kvm_make_all_cpus_request's cpu_kick_mask is per-CPU: a hard-IRQ handler on the
    same CPU that broadcasts while a task there is mid-broadcast is percpu-reentered; on
    another CPU it is not."""
    from vgic_actors.runtime import VcpuCore, kvm_make_all_cpus_request

    def run_with(irq_cpu):
        def setup(sched):
            cores = [VcpuCore(i, Pcpu(sched, i)) for i in range(3)]

            async def task():
                await kvm_make_all_cpus_request(cores, 9)

            async def handler():
                with hardirq("a_device_handler"):
                    await kvm_make_all_cpus_request(cores, 9)

            sched.spawn("task", task, cpu=0)
            sched.spawn("irq", handler, cpu=irq_cpu)

        return [v.invariant for s in range(20)
                for v in run(setup, RandomWalk(s)).context_violations]

    assert "percpu-reentered" in run_with(0)
    assert "percpu-reentered" not in run_with(1)
