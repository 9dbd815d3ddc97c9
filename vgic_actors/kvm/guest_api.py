"""What the kernel model needs from a guest, and what a guest may ask of the host.

The guest layer (vgic_actors/guest) implements ``GuestCpu``; the kernel only
calls it. A guest instruction that exits (a trap, an MMIO access, WFI) stays
unfinished until the host calls ``complete`` with its result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

from vgic_actors.arch.cpuif import VirtualCpuInterface
from vgic_actors.runtime import GuestExit

if TYPE_CHECKING:
    from vgic_actors.kvm.vm import Kvm

MmioReg = Literal[
    "ISPENDR", "ICPENDR", "ISACTIVER", "ICACTIVER", "ISENABLER", "ICENABLER", "IPRIORITYR",
    "ICFGR", "IGROUPR", "IROUTER", "ITARGETSR", "SGIR", "SPENDSGIR", "CPENDSGIR",
]


@dataclass(frozen=True, slots=True)
class MmioAccess:
    """A guest access to one interrupt's field of a GICD_* register (a stage-2 fault).

    Bit registers (IS/IC*R) carry no value: a write sets the interrupt's bit. Field
    registers carry the interrupt's field in ``value`` (reads return it):
    IPRIORITYR the priority byte; ICFGR the Int_config edge bit (1 edge, 0 level);
    IGROUPR the group bit; IROUTER (GICv3) the affinity Aff2.Aff1.Aff0, naming a vCPU by
    its MPIDR; ITARGETSR (GICv2) the CPU-target mask byte; SPENDSGIR/CPENDSGIR (GICv2)
    the SGI's source-CPU mask byte. SGIR (GICv2) is a whole-register write: ``value`` is
    the GICD_SGIR word (TargetListFilter [25:24], CPUTargetList [23:16], SGIINTID [3:0]).
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


@runtime_checkable
class VmmRequest(Protocol):
    """What a guest asks its VMM for (the selftest's GUEST_SYNC): the detail of a
    USERSPACE exit. KVM_RUN returns; the VMM runs ``vmm_perform`` on the vCPU's
    thread (the vCPU's pCPU actor) and re-enters; its errno completes the exit."""

    async def vmm_perform(self, kvm: Kvm) -> int:
        """Do the VMM's work (ioctls on ``kvm``); an errno, 0 on success."""
        ...


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


# --- the ITS (GITS_* frame) and the LPI property table -----------------------------------

ItsCmd = Literal[
    "MAPD", "MAPC", "MAPTI", "MAPI", "INT", "INV", "INVALL", "DISCARD", "MOVI", "CLEAR", "SYNC"
]


@dataclass(frozen=True, slots=True)
class ItsCommandWrite:
    """The guest queued one ITS command and advanced GITS_CWRITER past it (a stage-2 fault).

    The fields are the command's, as the guest wrote them into the command queue:
    ``device_id``/``event_id`` (MAPD, MAPTI, MAPI, INT, INV, DISCARD, MOVI, CLEAR),
    ``intid`` (MAPTI's pINTID), ``collection`` (MAPC, MAPTI, MAPI, INVALL, MOVI),
    ``target`` (MAPC's RDbase: a vCPU number, GITS_TYPER.PTA = 0), ``valid`` (MAPD, MAPC),
    ``size`` (MAPD: number of EventID bits).
    """

    vcpu_id: int
    cmd: ItsCmd
    device_id: int = 0
    event_id: int = 0
    intid: int = 0
    collection: int = 0
    target: int = 0
    valid: bool = True
    size: int = 16


LPI_PROP_ENABLED = 0x1  # LPI configuration table byte: bit 0 enable, [7:2] priority


def lpi_prop_key(intid: int) -> str:
    """The guest-memory location of ``intid``'s byte in the LPI configuration table
    (GICR_PROPBASER + intid - 8192)."""
    return f"lpi_prop.{intid}"
