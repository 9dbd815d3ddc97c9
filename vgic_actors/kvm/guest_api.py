"""What the kernel model needs from a guest, and what a guest may ask of the host.

The guest layer (vgic_actors/guest) implements ``GuestCpu``; the kernel only
calls it. A guest instruction that exits (a trap, an MMIO access, WFI) stays
unfinished until the host calls ``complete`` with its result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from vgic_actors.arch.cpuif import VirtualCpuInterface
from vgic_actors.runtime import GuestExit

MmioReg = Literal[
    "ISPENDR", "ICPENDR", "ISACTIVER", "ICACTIVER", "ISENABLER", "ICENABLER", "IPRIORITYR"
]


@dataclass(frozen=True, slots=True)
class MmioAccess:
    """A guest access to one interrupt's field of a GICD_* register (a stage-2 fault).

    Bit registers (IS/IC*R) carry no value: a write sets the interrupt's bit. IPRIORITYR
    writes ``value`` as the interrupt's priority byte.
    """

    vcpu_id: int
    reg: MmioReg
    intid: int
    write: bool
    value: int = 0


@dataclass(slots=True)
class GuestEnv:
    """What a guest instruction can touch: its CPU interface and the VM's shared memory."""

    vcpu_id: int
    cpuif: VirtualCpuInterface
    memory: dict[str, int] = field(default_factory=dict)


class GuestCpu(Protocol):
    """One vCPU's guest program."""

    @property
    def done(self) -> bool:
        """The program has finished (KVM_RUN returns)."""
        ...

    async def step(self, env: GuestEnv) -> GuestExit | None:
        """Run one instruction (with at least one interleaving point); an exit, or None."""
        ...

    def complete(self, value: int | None) -> None:
        """The host finished the exiting instruction (trap emulated, MMIO done, WFI woken)."""
        ...
