"""VMM actions as scenario files write them: ``{do: inject_edge, intid: 32}``.

The same actions appear in two places: in a guest program as ``- host: {do: ...}`` (the
selftest's GUEST_SYNC: the vCPU exits to userspace and the VMM acts on its thread), and
in the scenario's top-level ``host:`` list, run by a VMM actor of its own whose ioctls
reach the distributor as messages. The ``host:`` list also takes ``wait``, ``store`` and
``wait_resample`` steps.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from vgic_actors.guest.host import (
    LAST_ACKED,
    Do,
    Host,
    HostAction,
    HostStep,
    HostStore,
    HostWaitFor,
    InjectEdge,
    IrqfdAssign,
    IrqfdDeassign,
    IrqfdSignal,
    MapPhys,
    PhysAssert,
    PhysDeassert,
    SetGsiRouting,
    SetLevel,
    SetLevelInfo,
    SignalMsi,
    WaitResample,
    WriteIsactiver,
    WriteIspendr,
    WriteUaccess,
)
from vgic_actors.kvm.irq_routing import RoutingEntry
from vgic_actors.kvm.userspace import UaccessReg
from vgic_actors.scenario.ops import OpError, OpKind, convert, register_op
from vgic_actors.scenario.source import child_path, describe

U32 = Annotated[int, Meta(ge=0, le=0xFFFFFFFF)]
IrqNum = Annotated[int, Meta(ge=0, le=0xFFFF)]  # KVM_IRQ_LINE's irq field: KVM_ARM_IRQ_NUM_MASK
Vcpu = Annotated[int, Meta(ge=0, le=255)]


class _Act(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, tag_field="do"):
    expect_errno: int = 0


class InjectEdgeSpec(_Act, tag="inject_edge"):
    intid: IrqNum
    vcpu: Vcpu = 0


class SetLevelSpec(_Act, tag="set_level"):
    intid: IrqNum
    level: bool = True
    vcpu: Vcpu = 0


class SetLevelInfoSpec(_Act, tag="set_level_info"):
    intid: U32
    level: bool = True
    vcpu: Vcpu = 0


class WriteIspendrSpec(_Act, tag="write_ispendr"):
    intid: U32
    vcpu: Vcpu = 0


class WriteIsactiverSpec(_Act, tag="write_isactiver"):
    intid: U32 | Literal["last"]  # last: the INTID the guest acknowledged last
    vcpu: Vcpu = 0


class _UaccessClear(_Act):
    """A userspace write of a clear-bit register (the two subclasses name which)."""

    intid: U32 | Literal["last"]
    vcpu: Vcpu = 0


class WriteIcactiverSpec(_UaccessClear, tag="write_icactiver"):
    pass


class WriteIcpendrSpec(_UaccessClear, tag="write_icpendr"):
    pass


class RouteSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    gsi: U32
    type: Literal["irqchip", "msi"] = "irqchip"
    irqchip: U32 = 0
    pin: U32 = 0
    devid: U32 = 0
    data: U32 = 0
    flags: U32 = 0


class RoutingSpec(_Act, tag="set_gsi_routing"):
    entries: list[RouteSpec]


EventFdName = str | Annotated[int, Meta(ge=0)]  # a number names one too (eventfd: $i)


class IrqfdAssignSpec(_Act, tag="irqfd_assign"):
    gsi: U32
    eventfd: EventFdName
    resample: bool = False
    resamplefd: str | None = None


class IrqfdDeassignSpec(_Act, tag="irqfd_deassign"):
    gsi: U32
    eventfd: EventFdName


class IrqfdSignalSpec(_Act, tag="irqfd_signal"):
    eventfd: EventFdName
    context: Literal["task", "hardirq"] = "task"  # a write(2), or a VFIO device's handler


class SignalMsiSpec(_Act, tag="signal_msi"):
    devid: U32
    eventid: U32


class MapPhysSpec(_Act, tag="map_phys"):
    vintid: Annotated[int, Meta(ge=16, le=1019)]
    hwintid: Annotated[int, Meta(ge=16, le=1019)]
    vcpu: Vcpu = 0
    sw_resample: bool = False
    owner: str | None = "device"


class PhysAssertSpec(_Act, tag="phys_assert"):
    hwintid: Annotated[int, Meta(ge=16, le=1019)]


class PhysDeassertSpec(_Act, tag="phys_deassert"):
    hwintid: Annotated[int, Meta(ge=16, le=1019)]


class WaitSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, tag_field="do",
               tag="wait"):
    var: str
    value: int


class StoreSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, tag_field="do",
                tag="store"):
    var: str
    value: int


class WaitResampleSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True,
                       tag_field="do", tag="wait_resample"):
    resamplefd: str


ActionSpec = (InjectEdgeSpec | SetLevelSpec | SetLevelInfoSpec | WriteIspendrSpec
              | WriteIsactiverSpec | RoutingSpec | IrqfdAssignSpec | IrqfdDeassignSpec
              | IrqfdSignalSpec | SignalMsiSpec | MapPhysSpec | PhysAssertSpec
              | PhysDeassertSpec | WriteIcactiverSpec | WriteIcpendrSpec)
StepSpec = ActionSpec | WaitSpec | StoreSpec | WaitResampleSpec

ACTION_NAMES = sorted(str(t.__struct_config__.tag) for t in ActionSpec.__args__)
STEP_NAMES = [*ACTION_NAMES, "store", "wait", "wait_resample"]


def build_action(spec: Any) -> HostAction:
    """The guest/host.py action for a decoded spec."""
    if isinstance(spec, InjectEdgeSpec):
        return InjectEdge(spec.intid, spec.vcpu)
    if isinstance(spec, SetLevelSpec):
        return SetLevel(spec.intid, spec.level, spec.vcpu)
    if isinstance(spec, SetLevelInfoSpec):
        return SetLevelInfo(spec.intid, spec.level, spec.vcpu)
    if isinstance(spec, WriteIspendrSpec):
        return WriteIspendr(spec.intid, spec.vcpu)
    if isinstance(spec, WriteIsactiverSpec) and spec.intid != "last":
        return WriteIsactiver(spec.intid, spec.vcpu)
    if isinstance(spec, WriteIsactiverSpec | WriteIcactiverSpec | WriteIcpendrSpec):
        reg: UaccessReg = ("ISACTIVER" if isinstance(spec, WriteIsactiverSpec) else
                           "ICACTIVER" if isinstance(spec, WriteIcactiverSpec) else "ICPENDR")
        return WriteUaccess(reg, LAST_ACKED if spec.intid == "last" else spec.intid,
                            spec.vcpu)
    if isinstance(spec, RoutingSpec):
        return SetGsiRouting(tuple(RoutingEntry(e.gsi, e.type, e.irqchip, e.pin, e.devid,
                                                e.data, e.flags) for e in spec.entries))
    if isinstance(spec, IrqfdAssignSpec):
        return IrqfdAssign(spec.gsi, str(spec.eventfd), spec.resample, spec.resamplefd)
    if isinstance(spec, IrqfdDeassignSpec):
        return IrqfdDeassign(spec.gsi, str(spec.eventfd))
    if isinstance(spec, IrqfdSignalSpec):
        return IrqfdSignal(str(spec.eventfd), spec.context)
    if isinstance(spec, SignalMsiSpec):
        return SignalMsi(spec.devid, spec.eventid)
    if isinstance(spec, MapPhysSpec):
        return MapPhys(spec.vintid, spec.hwintid, spec.vcpu, spec.sw_resample, spec.owner)
    if isinstance(spec, PhysAssertSpec):
        return PhysAssert(spec.hwintid)
    if isinstance(spec, PhysDeassertSpec):
        return PhysDeassert(spec.hwintid)
    raise TypeError(f"not a host action: {spec!r}")


def _check_tag(value: Any, path: str, names: list[str]) -> None:
    if not isinstance(value, dict):
        raise OpError(path, "a mapping with 'do: ACTION'", describe(value))
    if value.get("do") not in names:
        raise OpError(child_path(path, "do"), f"one of {', '.join(names)}",
                      describe(value.get("do")) if "do" in value else "nothing")


def decode_host_op(arg: Any, path: str) -> Host:
    """A guest's ``host: {do: ...}`` operation."""
    _check_tag(arg, path, ACTION_NAMES)
    spec = convert(arg, ActionSpec, path)
    return Host(build_action(spec), spec.expect_errno)


def decode_host_steps(items: Any, path: str) -> list[HostStep]:
    """The scenario's top-level ``host:`` list."""
    if not isinstance(items, list):
        raise OpError(path, "a list of host steps", describe(items))
    steps: list[HostStep] = []
    for i, item in enumerate(items):
        ipath = child_path(path, i)
        _check_tag(item, ipath, STEP_NAMES)
        spec = convert(item, StepSpec, ipath)
        if isinstance(spec, WaitSpec):
            steps.append(HostWaitFor(spec.var, spec.value))
        elif isinstance(spec, StoreSpec):
            steps.append(HostStore(spec.var, spec.value))
        elif isinstance(spec, WaitResampleSpec):
            steps.append(WaitResample(spec.resamplefd))
        else:
            steps.append(Do(build_action(spec), spec.expect_errno))
    return steps


register_op("host", OpKind(ActionSpec, None, lambda s: Host(build_action(s), s.expect_errno),
                           custom=decode_host_op))
