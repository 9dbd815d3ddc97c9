"""The entry-window strategy: its holds, its conflict rule, and what they buy on a planted
stale-read-at-entry bug (the shape of mutant-stale-tdir, without a GIC)."""

from __future__ import annotations

from vgic_actors.runtime import (
    AtomicInt,
    ExitReason,
    GuestExit,
    Pcpu,
    RandomWalk,
    RunLoopConfig,
    Scheduler,
    VcpuCore,
    kvm_arch_vcpu_ioctl_run,
    point,
    run,
)
from vgic_actors.runtime.scheduler import Actor
from vgic_actors.runtime.strategies import (
    WINDOW_GUEST,
    WINDOW_MODE,
    WINDOW_REQUESTS,
    EntryWindow,
    Schedulable,
    make_strategy,
)


class StaleHooks:
    """A vCPU that reads a shared counter in its request check and runs its guest with
    what it read: a write landing between the read and the check (too late to be seen,
    too early for a re-check) is the bug."""

    def __init__(self, box: dict[str, object], cell: AtomicInt, insns: int) -> None:
        self.box, self.cell, self.left = box, cell, insns
        self.seen = self.checked = 0

    async def check_vcpu_requests(self) -> bool:
        self.seen = await self.cell.read()
        await point("vcpu.requests.pending")
        self.checked = self.cell.peek()  # a write from here on is caught (the re-check)
        return True

    async def flush_hwstate(self) -> None:
        await point("flush")

    async def sync_hwstate(self) -> None:
        await point("sync")

    def maintenance_irq_level(self) -> bool:
        return False

    async def guest_step(self) -> GuestExit | None:
        await point("insn")
        if self.seen != self.checked:  # written between the read and the check
            self.box["stale"] = True
        self.left -= 1
        return GuestExit(ExitReason.HALT) if self.left <= 0 else None

    async def handle_exit(self, exit: GuestExit) -> bool:
        return exit.reason is not ExitReason.HALT


def stale_entry(box: dict[str, object], writer_delay: int):
    """One vCPU entering every 2 instructions, a writer incrementing the counter once
    after `writer_delay` points, one noise actor."""

    def setup(sched: Scheduler) -> None:
        box["stale"] = False
        cell = AtomicInt("c")
        vcpu = VcpuCore(0, Pcpu(sched, 0))
        hooks = StaleHooks(box, cell, insns=8)

        async def vcpu_thread() -> None:
            await kvm_arch_vcpu_ioctl_run(vcpu, hooks, RunLoopConfig(timeslice=2))

        async def writer() -> None:
            for _ in range(writer_delay):
                await point("w.prep")
            await cell.fetch_add(1)
            await point("w.done")

        async def noise() -> None:
            for _ in range(6):
                await point("noise")

        sched.spawn("pcpu0", vcpu_thread, cpu=0)
        sched.spawn("writer", writer)
        sched.spawn("noise", noise)

    return setup


def stale_rate(make, seeds: int = 150) -> float:
    box: dict[str, object] = {}
    hits = 0
    for seed in range(seeds):
        run(stale_entry(box, writer_delay=seed % 7), make(seed))
        hits += bool(box["stale"])
    return hits / seeds


def test_window_finds_the_stale_entry_far_more_often_than_random_walk():
    """The conflict hold lands the write between the vCPU's read and its entry."""
    window, walk = stale_rate(EntryWindow), stale_rate(RandomWalk)
    assert window >= 0.3
    assert window >= 2 * walk


def test_window_without_holds_is_a_random_walk_that_never_favours():
    """With every probability 0 no actor is held, so every choice is uniform: the same
    runs still finish and the rate falls back toward random walk's."""
    rate = stale_rate(lambda s: EntryWindow(s, p=0.0, p_conflict=0.0, p_writer=0.0))
    assert rate <= stale_rate(EntryWindow) / 2


def test_same_seed_same_choices():
    """The strategy draws only from its own seeded generator."""
    box: dict[str, object] = {}
    logs = [run(stale_entry(box, 3), EntryWindow(5)).choices for _ in range(2)]
    assert logs[0] == logs[1]
    assert make_strategy("window", 5).describe() == EntryWindow(5).describe()


class Item(Schedulable):
    """A stand-in for an actor as the strategy sees it."""

    def __init__(self, aid: int, label: str = "", window: int = 0, history=()) -> None:
        super().__init__()
        self.id, self.label, self.window, self.steps, self.entries = aid, label, window, 0, 0
        self.history = [*history, label]


def test_a_conflict_holds_the_reader_and_runs_the_writer_first():
    """A reader in its window that read ``c`` while a writer is parked at ``c.fetch_add``:
    the writer is chosen, then the reader is not while anything else is enabled."""
    st = EntryWindow(1, p=0.0, p_conflict=1.0, p_writer=0.0)
    reader = Item(0, "vcpu0.requests.pending", WINDOW_REQUESTS, ["c.read"])
    writer = Item(1, "c.fetch_add")
    other = Item(2, "noise")
    assert st.choose([reader, writer, other]) == 1
    assert st.conflicts == 1
    writer.label, writer.steps = "after", 1
    picks = {st.choose([reader, writer, other]) for _ in range(20)}
    assert 0 not in picks
    assert st.choose([reader]) == 0  # held, but alone: it runs


def test_a_conflict_held_reader_is_held_again_at_its_next_guest_entry():
    """After a conflict the reader's next guest entry is held too (GUEST_HOLD x span)."""
    st = EntryWindow(1, p=0.0, p_conflict=1.0, p_writer=0.0, span=4)
    reader = Item(0, "vcpu0.mode.store", WINDOW_MODE, ["c.read"])
    writer = Item(1, "c.fetch_add")
    st.choose([reader, writer])
    for _ in range(5):  # the conflict hold (span 4) runs out
        st.choose([reader, writer])
    reader.window, reader.entries, reader.label = WINDOW_GUEST, 1, "insn"
    assert all(st.choose([reader, writer]) == 1 for _ in range(12))


def test_no_conflict_without_a_read_of_the_written_cell():
    """A write to another cell, or a read long ago, holds nobody."""
    st = EntryWindow(1, p=0.0, p_conflict=1.0, p_writer=0.0)
    reader = Item(0, "x", WINDOW_REQUESTS, ["d.read"])
    old = Item(2, "y", WINDOW_REQUESTS, ["c.read", "a", "b", "e"])
    writer = Item(1, "c.fetch_add")
    st.choose([reader, old, writer])
    assert st.conflicts == 0 and st.holds == 0


def test_the_run_loop_marks_every_part_of_its_entry_window():
    """kvm_arch_vcpu_ioctl_run marks the request check, the flush-to-mode-store stretch
    and the guest slice, and clears the mark outside them."""
    seen: set[tuple[int, str]] = set()

    class Spy(RandomWalk):
        def choose(self, enabled):
            for item in enabled:
                if isinstance(item, Actor) and item.name == "pcpu0":
                    seen.add((item.window, item.label))
            return super().choose(enabled)

    box: dict[str, object] = {}
    run(stale_entry(box, 2), Spy(3))
    assert (WINDOW_REQUESTS, "vcpu.requests.pending") in seen
    assert (WINDOW_MODE, "flush") in seen
    assert (WINDOW_GUEST, "insn") in seen
    assert not {label for window, label in seen if window} & {"sync", "start"}


def test_a_window_run_replays_from_its_choice_log():
    """Holds are the strategy's own business: the choice log alone replays the run."""
    from vgic_actors.runtime import Replay

    box: dict[str, object] = {}
    for seed in range(10):
        first = run(stale_entry(box, seed % 5), EntryWindow(seed))
        stale = box["stale"]
        again = run(stale_entry(box, seed % 5), Replay(first.choices))
        assert again.choices == first.choices and again.steps == first.steps
        assert box["stale"] == stale
