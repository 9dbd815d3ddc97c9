"""Shared cells: state the kernel touches without a lock. Every access is one point.

`AtomicInt` is atomic_t, `VcpuRequests` is vcpu->requests, `VcpuMode` is vcpu->mode.
The read-modify-write happens after the point, atomically with respect to every other
actor, as the kernel's atomics and barriers guarantee. `peek` reads without a point,
for invariant checks and tests only, never for model logic.
"""

from __future__ import annotations

import enum

from vgic_actors.events import CellAccessed, ModeChanged, RequestChecked, RequestMade
from vgic_actors.runtime.scheduler import Actor, point

KVM_REQUEST_MASK = 0xFF
"""kvm_host.h: the request number is the low byte; flags live above it."""

REQUEST_NAMES: dict[int, str] = {}
"""Request number (low byte) -> kernel name, as the layer that defines the requests
registers them (kvm/vm.py); the events carry the name."""


def name_request(req: int, name: str) -> None:
    """Register ``name`` (``KVM_REQ_IRQ_PENDING``) for request ``req``'s number."""
    REQUEST_NAMES[req & KVM_REQUEST_MASK] = name


def _int32(value: int) -> int:
    """``value`` as a C ``int`` holds it (two's complement, 32 bits: atomic_t's counter)."""
    return (value + 0x8000_0000) % 0x1_0000_0000 - 0x8000_0000


class AtomicInt:
    """include/linux/atomic.h: atomic_t, an ``int`` counter that wraps at 32 bits (the
    kernel builds with -fno-strict-overflow). Each operation is one interleaving point."""

    __slots__ = ("_l", "name", "value")

    def __init__(self, name: str, value: int = 0) -> None:
        self.name = name
        self.value = _int32(value)
        self._l = {op: f"{name}.{op}" for op in ("read", "set", "fetch_add", "dec_if_positive")}

    def peek(self) -> int:
        """The value without a point (checks and tests only)."""
        return self.value

    def _log(self, actor: Actor, op: str, old: int) -> None:
        sched = actor.sched
        sched.em.emit(
            CellAccessed(
                step=sched.step, vt=sched.vt, actor=actor.name, cell=self.name, op=op,
                old=old, new=self.value,
            )
        )

    async def read(self) -> int:
        """atomic_read."""
        actor = await point(self._l["read"])
        if actor.sched.em.on:
            self._log(actor, "read", self.value)
        return self.value

    async def set(self, value: int) -> None:
        """atomic_set."""
        actor = await point(self._l["set"])
        old, self.value = self.value, _int32(value)
        if actor.sched.em.on:
            self._log(actor, "set", old)

    async def fetch_add(self, delta: int) -> int:
        """atomic_fetch_add: add `delta`, return the old value."""
        actor = await point(self._l["fetch_add"])
        old = self.value
        self.value = _int32(old + delta)
        if actor.sched.em.on:
            self._log(actor, "fetch_add", old)
        return old

    async def fetch_inc(self) -> int:
        """atomic_fetch_inc: increment, return the old value."""
        return await self.fetch_add(1)

    async def fetch_dec(self) -> int:
        """atomic_fetch_dec: decrement, return the old value."""
        return await self.fetch_add(-1)

    async def dec_if_positive(self) -> int:
        """atomic_dec_if_positive: returns old - 1; stores it only when it is >= 0."""
        actor = await point(self._l["dec_if_positive"])
        old = self.value
        new = old - 1
        if new >= 0:
            self.value = new
        if actor.sched.em.on:
            self._log(actor, "dec_if_positive", old)
        return new


class VcpuRequests:
    """vcpu->requests: one bit per request number (the low byte of a request value)."""

    __slots__ = ("_l_check", "_l_make", "_l_pending", "bits", "vcpu_id")

    def __init__(self, vcpu_id: int) -> None:
        self.vcpu_id = vcpu_id
        self.bits = 0
        self._l_make = f"vcpu{vcpu_id}.requests.make"
        self._l_check = f"vcpu{vcpu_id}.requests.check"
        self._l_pending = f"vcpu{vcpu_id}.requests.pending"

    def peek(self) -> int:
        """The bit mask without a point (checks and tests only)."""
        return self.bits

    async def kvm_make_request(self, req: int) -> None:
        """kvm_host.h: kvm_make_request (smp_wmb, then set_bit)."""
        actor = await point(self._l_make)
        self.bits |= 1 << (req & KVM_REQUEST_MASK)
        sched = actor.sched
        if sched.em.on:
            sched.em.emit(
                RequestMade(
                    step=sched.step, vt=sched.vt, actor=actor.name, vcpu=self.vcpu_id,
                    req=req & KVM_REQUEST_MASK,
                    req_name=REQUEST_NAMES.get(req & KVM_REQUEST_MASK, ""),
                )
            )

    async def kvm_check_request(self, req: int) -> bool:
        """kvm_host.h: kvm_check_request (test and clear, then smp_mb)."""
        actor = await point(self._l_check)
        bit = 1 << (req & KVM_REQUEST_MASK)
        found = bool(self.bits & bit)
        self.bits &= ~bit
        sched = actor.sched
        if sched.em.on:
            sched.em.emit(
                RequestChecked(
                    step=sched.step, vt=sched.vt, actor=actor.name, vcpu=self.vcpu_id,
                    req=req & KVM_REQUEST_MASK, found=found,
                    req_name=REQUEST_NAMES.get(req & KVM_REQUEST_MASK, ""),
                )
            )
        return found

    async def kvm_test_request(self, req: int) -> bool:
        """kvm_host.h: kvm_test_request (test without clearing)."""
        await point(self._l_check)
        return bool(self.bits & (1 << (req & KVM_REQUEST_MASK)))

    async def kvm_request_pending(self) -> bool:
        """kvm_host.h: kvm_request_pending (READ_ONCE(vcpu->requests) != 0)."""
        await point(self._l_pending)
        return self.bits != 0


class Mode(enum.IntEnum):
    """kvm_host.h: the values of vcpu->mode."""

    OUTSIDE_GUEST_MODE = 0
    IN_GUEST_MODE = 1
    EXITING_GUEST_MODE = 2


OUTSIDE_GUEST_MODE = Mode.OUTSIDE_GUEST_MODE
IN_GUEST_MODE = Mode.IN_GUEST_MODE
EXITING_GUEST_MODE = Mode.EXITING_GUEST_MODE


class VcpuMode:
    """vcpu->mode: plain stores, smp_store_mb and the cmpxchg of kvm_vcpu_exiting_guest_mode."""

    __slots__ = ("_l_cmpxchg", "_l_read", "_l_store", "mode", "vcpu_id")

    def __init__(self, vcpu_id: int) -> None:
        self.vcpu_id = vcpu_id
        self.mode = Mode.OUTSIDE_GUEST_MODE
        self._l_read = f"vcpu{vcpu_id}.mode.read"
        self._l_store = f"vcpu{vcpu_id}.mode.store"
        self._l_cmpxchg = f"vcpu{vcpu_id}.mode.cmpxchg"

    def peek(self) -> Mode:
        """The mode without a point (checks and tests only)."""
        return self.mode

    def _log(self, actor: Actor, old: Mode, op: str) -> None:
        sched = actor.sched
        sched.em.emit(
            ModeChanged(
                step=sched.step, vt=sched.vt, actor=actor.name, vcpu=self.vcpu_id,
                old=int(old), new=int(self.mode), op=op,
            )
        )

    async def read(self) -> Mode:
        """READ_ONCE(vcpu->mode)."""
        await point(self._l_read)
        return self.mode

    async def store(self, mode: Mode) -> None:
        """WRITE_ONCE(vcpu->mode, mode)."""
        actor = await point(self._l_store)
        old, self.mode = self.mode, mode
        if actor.sched.em.on and old != mode:
            self._log(actor, old, "store")

    async def smp_store_mb(self, mode: Mode) -> None:
        """smp_store_mb(vcpu->mode, mode): the store and a full barrier, one point."""
        actor = await point(self._l_store)
        old, self.mode = self.mode, mode
        if actor.sched.em.on and old != mode:
            self._log(actor, old, "store_mb")

    async def cmpxchg(self, old: Mode, new: Mode) -> Mode:
        """cmpxchg(&vcpu->mode, old, new): returns the mode found."""
        actor = await point(self._l_cmpxchg)
        found = self.mode
        if found == old:
            self.mode = new
            if actor.sched.em.on and old != new:
                self._log(actor, found, "cmpxchg")
        return found
