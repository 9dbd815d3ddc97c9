"""Guest programs: what each vCPU's guest does, one instruction per interleaving point."""

from vgic_actors.guest.its import ItsCommand, SetLpiConfig
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
    WaitSet,
)
from vgic_actors.guest.sgi import SendSgi

__all__ = [
    "RETRY",
    "Ack",
    "Dir",
    "Eoir",
    "GuestOp",
    "GuestProgram",
    "ItsCommand",
    "Mmio",
    "SendSgi",
    "SetEoiMode",
    "SetGroupEnable",
    "SetLpiConfig",
    "SetPmr",
    "Store",
    "WaitFor",
    "WaitSet",
]
