"""A kernel workqueue: work queued from any context runs later on a kworker, in task context.

kernel/workqueue.c: queue_work / schedule_work. A work item is a message in flight to
the kworker actor's mailbox (spawned on first use, so runs without deferred work have no
extra actor); the kworker runs each item in task context, preemptible, on no vCPU's CPU.
Queueing a work item that is still pending does nothing (queue_work returns false).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import cast

from vgic_actors.runtime.messages import Mailbox, serve
from vgic_actors.runtime.scheduler import Message, Scheduler

Work = Callable[[], Awaitable[None]]


class Workqueue:
    """system_wq: one kworker actor serving work items in the order they were queued."""

    def __init__(self, sched: Scheduler, name: str = "kworker") -> None:
        self.sched = sched
        self.name = name
        self.mailbox = Mailbox(sched, name)
        self._pending: set[str] = set()
        self._started = False
        self.queued = 0  # work items queued so far

    def schedule_work(self, key: str, work: Work, *, src: str) -> bool:
        """Queue `work` (named `key`, e.g. the irqfd's inject work) unless already pending.
        No interleaving point: queueing is atomic and allowed in any context."""
        if key in self._pending:
            return False
        self._pending.add(key)
        self.queued += 1
        if not self._started:
            self._started = True
            self.sched.spawn(self.name, self._worker)
        self.mailbox.post((key, work), kind=f"work:{key}", src=src)
        return True

    async def _run(self, msg: Message) -> object:
        key, work = cast(tuple[str, Work], msg.payload)
        self._pending.discard(key)  # process_one_work clears PENDING before running it
        await work()
        return None

    async def _worker(self) -> None:
        await serve(self.mailbox, self._run)
