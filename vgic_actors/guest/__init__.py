"""Guest programs: what each vCPU's guest does, one instruction per interleaving point."""

from vgic_actors.guest.program import (
    RETRY,
    Ack,
    Dir,
    Eoir,
    GuestOp,
    GuestProgram,
    Mmio,
    SetEoiMode,
    SetGroupEnable,
    SetPmr,
    Store,
    WaitFor,
)

__all__ = [
    "RETRY",
    "Ack",
    "Dir",
    "Eoir",
    "GuestOp",
    "GuestProgram",
    "Mmio",
    "SetEoiMode",
    "SetGroupEnable",
    "SetPmr",
    "Store",
    "WaitFor",
]
