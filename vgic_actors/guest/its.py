"""Guest operations for LPIs: ITS commands and the LPI configuration table.

``ItsCommand`` is one command: the guest writes it into the ITS command queue and
advances GITS_CWRITER past it, an MMIO exit that KVM serves (vgic_mmio_write_its_cwriter).
``SetLpiConfig`` writes one LPI's byte of the configuration table in guest memory; KVM
reads it only on MAPTI/MAPI, INV and INVALL, so a change needs an INV to take effect.
"""

from __future__ import annotations

from dataclasses import dataclass

from vgic_actors.guest.program import GuestOp, GuestProgram, StepResult
from vgic_actors.kvm.guest_api import (
    LPI_PROP_ENABLED,
    GuestEnv,
    ItsCmd,
    ItsCommandWrite,
    lpi_prop_key,
)
from vgic_actors.runtime import ExitReason, GuestExit


@dataclass(frozen=True, slots=True)
class ItsCommand(GuestOp):
    """One ITS command (MAPD, MAPC, MAPTI, MAPI, INT, INV, INVALL, DISCARD, MOVI, CLEAR, SYNC).

    Fields as in the command: ``device_id``, ``event_id``, ``intid`` (MAPTI's LPI),
    ``collection``, ``target`` (MAPC: the vCPU), ``valid`` (MAPD/MAPC), ``size`` (MAPD:
    EventID bits). The command's outcome is not visible to the guest (as on hardware
    without error reporting).
    """

    cmd: ItsCmd
    device_id: int = 0
    event_id: int = 0
    intid: int = 0
    collection: int = 0
    target: int = 0
    valid: bool = True
    size: int = 16

    def execute(self, prog: GuestProgram, env: GuestEnv) -> StepResult:
        write = ItsCommandWrite(env.vcpu_id, self.cmd, self.device_id, self.event_id,
                                self.intid, self.collection, self.target, self.valid, self.size)
        return GuestExit(ExitReason.TRAP, write)


@dataclass(frozen=True, slots=True)
class SetLpiConfig(GuestOp):
    """Write LPI ``intid``'s configuration byte: ``priority`` (bits [7:2]) and ``enable``."""

    intid: int
    enable: bool = True
    priority: int = 0xA0

    def __post_init__(self) -> None:
        if self.intid < 8192:
            raise ValueError(f"SetLpiConfig.intid: expected an LPI (>= 8192), got {self.intid}")
        if not 0 <= self.priority <= 0xFF:
            raise ValueError(f"SetLpiConfig.priority: expected 0..255, got {self.priority}")

    def execute(self, prog: GuestProgram, env: GuestEnv) -> StepResult:
        env.memory[lpi_prop_key(self.intid)] = (self.priority & 0xFC) | (
            LPI_PROP_ENABLED if self.enable else 0)
        return None
