"""Where each CPU is in the kernel: the kernel-named functions on an actor's stack.

Every actor is a coroutine the scheduler parks at an interleaving point, so at any kernel
event the other CPUs' stacks can be read from their coroutines' ``cr_await`` chains, and the
current CPU's from its running frames. Only model functions that carry kernel names count
(modules under ``vgic_actors.kvm``, public names), as runtime/context.py's call chain for a
context violation does. A chain is written innermost first, ftrace style:
``kvm_arm_halt_guest<-vgic_mmio_change_active<-vgic_v3_deactivate``.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from types import FrameType
from typing import Any

KERNEL_MODULES = ("vgic_actors.kvm",)
SHELL = frozenset({"handle", "run", "call", "run_host", "guest_step", "ioctl_run", "distributor",
                   "flush_hwstate", "sync_hwstate"})
"""Model plumbing that carries no kernel meaning."""


def _kernel_name(frame: FrameType) -> str | None:
    module = frame.f_globals.get("__name__", "")
    name = frame.f_code.co_name
    if module.startswith(KERNEL_MODULES) and not name.startswith("_") and name not in SHELL:
        return name
    return None


def _awaited_frames(coro: Any) -> Iterator[FrameType]:
    """The frames of a parked coroutine, outermost first (its ``cr_await`` chain)."""
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is None:
            return
        yield frame
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)


def _names(frames: Iterator[FrameType]) -> list[str]:
    out: list[str] = []
    for frame in frames:
        name = _kernel_name(frame)
        if name is not None and (not out or out[-1] != name):
            out.append(name)
    return out


def running_chain() -> list[str]:
    """The kernel functions on the running actor's stack, innermost first."""
    frames: list[FrameType] = []
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        frames.append(frame)
        frame = frame.f_back
    return _names(iter(reversed(frames)))[::-1]


def parked_chain(coro: Any) -> list[str]:
    """The kernel functions on a parked actor's coroutine stack, innermost first."""
    return _names(_awaited_frames(coro))[::-1]


def render(chain: list[str], depth: int = 2) -> str:
    """``inner<-outer`` for the ``depth`` innermost functions; "" outside the kernel."""
    return "<-".join(chain[:depth])


def cpu_chains(sched: Any) -> dict[str, list[str]]:
    """Every actor's kernel chain at this moment, by actor name: the running actor's from
    its frames, the parked ones' from their coroutines (an actor not yet started or
    finished has none)."""
    from vgic_actors.errors import OutsideActorError
    from vgic_actors.runtime import current_actor

    me: Any = None
    with contextlib.suppress(OutsideActorError):  # a check run by hand, outside any run
        me = current_actor()
    out: dict[str, list[str]] = {}
    for actor in sched.actors:
        if actor is me:
            out[actor.name] = running_chain()
        elif actor.task is not None:
            out[actor.name] = parked_chain(actor.task)
    return out
