"""Guest programs: what each vCPU's guest does, one instruction per interleaving point."""

from vgic_actors.guest.program import (
    Ack,
    Dir,
    Eoir,
    GuestProgram,
    Mmio,
    Op,
    SetEoiMode,
    SetGroupEnable,
    SetPmr,
    Store,
    WaitFor,
)

__all__ = [
    "Ack",
    "Dir",
    "Eoir",
    "GuestProgram",
    "Mmio",
    "Op",
    "SetEoiMode",
    "SetGroupEnable",
    "SetPmr",
    "Store",
    "WaitFor",
]
