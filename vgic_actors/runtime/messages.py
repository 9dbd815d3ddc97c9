"""Mailboxes on Trio memory channels, request/reply, and the serving-actor shell.

A send puts a `Message` in flight; only the scheduler's delivery moves it into the
receiver's memory channel (unbounded, used with the non-blocking calls, so Trio never
wakes a task behind the scheduler's back). Receiving from an empty mailbox blocks the
actor as *idle* (it waits for new work); the delivery wakes it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Awaitable, Callable

import trio

from vgic_actors.errors import RuntimeModelError
from vgic_actors.runtime.scheduler import Actor, Message, Scheduler, current_actor, point


class Mailbox:
    """An actor's inbox (the distributor's MMIO queue, a pCPU's IPI line, a device's)."""

    def __init__(self, sched: Scheduler, name: str) -> None:
        self.sched = sched
        self.name = name
        self._tx, self._rx = trio.open_memory_channel[Message](math.inf)
        self._count = 0
        self._kinds: Counter[str] = Counter()
        self._waiter: Actor | None = None
        self._l_send = f"send:{name}"
        self._l_recv = f"recv:{name}"

    def _arrive(self, msg: Message) -> None:
        self._tx.send_nowait(msg)
        self._count += 1
        self._kinds[msg.kind] += 1
        if self._waiter is not None:
            self.sched.wake(self._waiter)

    def pending(self) -> int:
        """Delivered messages not yet received (no interleaving point)."""
        return self._count

    def holds(self, kind: str) -> bool:
        """Whether a delivered, not yet received message is of ``kind`` (no point)."""
        return self._kinds[kind] > 0

    def post(
        self,
        payload: object,
        *,
        kind: str,
        src: str,
        on_delivered: Callable[[Message], None] | None = None,
        latency: int | None = None,
    ) -> Message:
        """Put a message in flight without a point (timer callbacks, hardware IPIs)."""
        return self.sched.post(
            self, payload, kind=kind, src=src, on_delivered=on_delivered, latency=latency
        )

    async def send(self, payload: object, *, kind: str) -> Message:
        """An interleaving point, then a message in flight to this mailbox."""
        actor = await point(self._l_send)
        return self.sched.post(self, payload, kind=kind, src=actor.name)

    async def request(self, payload: object, *, kind: str) -> object:
        """Send and block (not idle) until the reply is delivered; returns the reply payload."""
        actor = await point(self._l_send)
        slot = ReplySlot(self.sched, actor, kind)
        self.sched.post(self, payload, kind=kind, src=actor.name, reply_to=slot)
        while not slot.done:
            await self.sched.block(actor, f"reply:{kind}")
        return slot.value

    def receive_nowait(self) -> Message | None:
        """The next delivered message, or None (no interleaving point)."""
        try:
            msg = self._rx.receive_nowait()
        except trio.WouldBlock:
            return None
        self._count -= 1
        self._kinds[msg.kind] -= 1
        return msg

    def drain(self) -> list[Message]:
        """Take every delivered message at once (no point): a pCPU taking its IPIs."""
        out: list[Message] = []
        while (msg := self.receive_nowait()) is not None:
            out.append(msg)
        return out

    async def receive(self) -> Message:
        """The next message: a point when one is waiting, else an idle block until delivery."""
        if self._count:
            await point(self._l_recv)
        actor = current_actor()
        while (msg := self.receive_nowait()) is None:
            if self._waiter is not None and self._waiter is not actor:
                raise RuntimeModelError(f"two actors receive from mailbox {self.name}")
            self._waiter = actor
            try:
                await self.sched.block(actor, self._l_recv, idle=True)
            finally:
                self._waiter = None
        return msg


class ReplySlot:
    """Where one reply lands; delivering it wakes the requester."""

    def __init__(self, sched: Scheduler, waiter: Actor, kind: str) -> None:
        self.sched, self.waiter = sched, waiter
        self.name = f"{waiter.name}.reply"
        self.kind = kind
        self.done = False
        self.value: object = None

    def _arrive(self, msg: Message) -> None:
        self.value = msg.payload
        self.done = True
        self.sched.wake(self.waiter)


async def reply(msg: Message, payload: object) -> None:
    """Answer a request: an interleaving point, then the reply in flight."""
    if msg.reply_to is None:
        raise RuntimeModelError(f"message #{msg.seq} ({msg.kind}) expects no reply")
    actor = await point(f"reply:{msg.kind}")
    actor.sched.post(msg.reply_to, payload, kind=f"{msg.kind}.reply", src=actor.name)


Handler = Callable[[Message], Awaitable[object]]


async def serve(mailbox: Mailbox, handler: Handler) -> None:
    """The serving-actor shell (the distributor): receive, handle, reply if asked; forever.

    The handler's return value is the reply for requests; it is ignored otherwise.
    Blocked on an empty mailbox the actor is idle, so a run can end quiescent.
    """
    while True:
        msg = await mailbox.receive()
        result = await handler(msg)
        if msg.reply_to is not None:
            await reply(msg, result)
