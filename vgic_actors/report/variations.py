"""The configurations a report sweeps: the finding's scenario changed in one respect.

Three axes, each a transformation of the validated scenario that keeps every guest's
program order (so the interleaving the finding needs stays expressible):

- **GIC**: the guest's GIC model and the host's GIC. The host's GIC, not the guest's
  model, picks the fold and the DIR emulation (vgic.c: vgic_fold_lr_state on
  kvm_vgic_global_state.type, commit 1c3b3cadcd69), so the three pairs KVM runs are
  tried: GICv3 on GICv3, GICv2 on GICv3, GICv2 on GICv2. The file is re-validated in
  each, so an LPI or an ICC_SGI1R write on a GICv2 guest is "not expressible".
- **EOImode**: ICC_CTLR_EL1.EOImode (GICC_CTLR.EOImodeNS) as the guests set it. To 0:
  every DIR is dropped (with EOImode 0 an EOIR both drops the priority and deactivates,
  and a DIR is UNPREDICTABLE: GIC architecture, ICC_DIR_EL1); to 1: each EOIR is
  followed by a DIR of the same interrupt on the same vCPU.
- **Injection**: how the edge SPIs reach KVM. Each injection of an edge SPI, wherever it
  sits (a guest GICD_ISPENDR write, a guest GUEST_SYNC exit or a VMM step), is replaced
  in place by the same injection through another path: a guest GICD_ISPENDR write
  (vgic-mmio.c: vgic_mmio_write_spending; only where a guest injected), KVM_IRQ_LINE
  (arm.c: kvm_vm_ioctl_irq_line, level 1 then 0), or an irqfd written from a thread
  or signalled from a VFIO device's hard IRQ handler (eventfd.c: irqfd_wakeup), with the
  KVM_IRQFD assignment made first by the same actor. Level SPIs keep their path: their
  line is driven by the device model, not a one-shot injection.

`variations` returns the as-run configuration first, then each alternative once.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from vgic_actors.errors import VgicActorsError
from vgic_actors.guest.host import (
    Do,
    Host,
    HostAction,
    HostStep,
    InjectEdge,
    IrqfdAssign,
    IrqfdSignal,
    SetGsiRouting,
    WriteIspendr,
)
from vgic_actors.guest.program import Dir, Eoir, GuestOp, Mmio, SetEoiMode
from vgic_actors.guest.sysreg import IccWrite
from vgic_actors.scenario.loader import GuestPlan, Scenario, parse_scenario_data

GIC_PAIRS = (("v3", "v3"), ("v2", "v3"), ("v2", "v2"))
"""(guest GIC model, host GIC) pairs KVM supports."""

PATHS = ("ispendr", "irq_line", "irqfd", "irqfd_hardirq")
"""Edge-SPI injection paths, as `Variation.label` names them in `PATH_TEXT`."""

PATH_TEXT = {
    "ispendr": "a guest GICD_ISPENDR write",
    "irq_line": "KVM_IRQ_LINE",
    "irqfd": "an irqfd written from a thread",
    "irqfd_hardirq": "an irqfd signalled from a device's hard IRQ",
    "userspace_ispendr": "a userspace GICD_ISPENDR write",
}

_CTLR_EOIMODE = 1 << 1  # ICC_CTLR_EL1.EOImode
_FD = "sweep.spi"  # the eventfd name prefix of an injection moved onto an irqfd


@dataclass(frozen=True)
class Variation:
    """One configuration: ``axis`` (``as run``, ``GIC``, ``EOImode``, ``injection``), its
    ``label`` and the scenario to run, or ``error`` when the finding's scenario cannot be
    expressed in it."""

    axis: str
    label: str
    scenario: Scenario | None
    error: str = ""


def variations(scenario: Scenario, file: Path) -> list[Variation]:
    """The as-run configuration, then every other GIC pair, EOImode and injection path."""
    out = [Variation("as run", as_run(scenario), scenario)]
    own_pair = f"v{scenario.vm.gic_model.value}", f"v{scenario.vm.host_gic.value}"
    out += [_gic_pair(file, guest, host) for guest, host in GIC_PAIRS
            if (guest, host) != own_pair]
    modes = eoimodes(scenario)
    for mode in (0, 1):
        if modes != {mode}:
            out.append(Variation("EOImode", f"EOImode {mode}", with_eoimode(scenario, mode)))
    used = injection_paths(scenario)
    if used:
        for path in PATHS:
            if used != {path}:
                out.append(_injection(scenario, path))
    return out


def as_run(scenario: Scenario) -> str:
    """``GICv3 guest on a GICv3 host, EOImode 1, edge SPIs by KVM_IRQ_LINE``."""
    vm = scenario.vm
    modes = "/".join(str(m) for m in sorted(eoimodes(scenario)))
    text = (f"GICv{vm.gic_model.value} guest on a GICv{vm.host_gic.value} host, "
            f"EOImode {modes}")
    used = injection_paths(scenario)
    if used:
        text += ", edge SPIs by " + " and ".join(PATH_TEXT[p] for p in sorted(used))
    return text


# --- GIC ----------------------------------------------------------------------------


def _gic_pair(file: Path, guest: str, host: str) -> Variation:
    label = f"GIC{guest} guest on a GIC{host} host"
    data: dict[str, Any] = yaml.safe_load(file.read_text(encoding="utf-8"))
    data.pop("expect", None)  # verdicts name variants, not configurations
    trial = copy.deepcopy(data)
    vm = trial.setdefault("vm", {})
    vm["gic"], vm["host_gic"] = guest, host
    try:
        return Variation("GIC", label, parse_scenario_data(trial, str(file)))
    except VgicActorsError as exc:
        return Variation("GIC", label, None, exc.format_message().split(": ")[-1])


# --- EOImode ------------------------------------------------------------------------


def _programs(scenario: Scenario) -> Iterable[list[GuestOp]]:
    for plan in scenario.guests:
        yield plan.ops
        if plan.handler is not None:
            yield plan.handler


def eoimodes(scenario: Scenario) -> set[int]:
    """The EOImodes the guests run with (0 for a vCPU that never sets it)."""
    modes = set()
    for plan in scenario.guests:
        mode = 0
        for op in plan.ops:
            if isinstance(op, SetEoiMode):
                mode = int(op.eoimode)
            elif isinstance(op, IccWrite) and op.reg == "ICC_CTLR_EL1":
                mode = int(bool(op.value & _CTLR_EOIMODE))
        modes.add(mode)
    return modes


def with_eoimode(scenario: Scenario, mode: int) -> Scenario:
    """Every guest with EOImode ``mode``: the mode writes changed, and DIRs dropped (0) or
    added after each EOIR (1); a vCPU that never wrote it sets it first (1)."""

    def change(ops: list[GuestOp], first: bool) -> list[GuestOp]:
        out: list[GuestOp] = [SetEoiMode(True)] if first and mode else []
        for op in ops:
            if isinstance(op, SetEoiMode):
                out.append(SetEoiMode(bool(mode)))
            elif isinstance(op, IccWrite) and op.reg == "ICC_CTLR_EL1":
                value = op.value | _CTLR_EOIMODE if mode else op.value & ~_CTLR_EOIMODE
                out.append(dataclasses.replace(op, value=value))
            elif isinstance(op, Dir):
                if mode:
                    out.append(op)
            elif isinstance(op, Eoir) and mode:
                out += [op, Dir(intid=op.intid)]
            else:
                out.append(op)
        return out

    guests = []
    for plan in scenario.guests:
        sets = any(isinstance(op, SetEoiMode)
                   or (isinstance(op, IccWrite) and op.reg == "ICC_CTLR_EL1")
                   for op in plan.ops)
        handler = None if plan.handler is None else change(plan.handler, False)
        guests.append(GuestPlan(change(plan.ops, not sets), handler))
    return dataclasses.replace(scenario, guests=guests)


# --- injection ----------------------------------------------------------------------


def _edge_spis(scenario: Scenario) -> set[int]:
    """SPIs the scenario never makes level (its `irqs` section, or a guest ICFGR write)."""
    level = {irq.intid for irq in scenario.irqs if irq.trigger == "level"}
    level |= {op.intid for ops in _programs(scenario) for op in ops
              if isinstance(op, Mmio) and op.write and op.reg == "ICFGR" and op.value == 0}
    hw = {irq.intid for irq in scenario.irqs if irq.hw is not None}
    return {n for n in range(32, 32 + scenario.vm.nr_spis) if n not in level | hw}


def _vmm_actions(scenario: Scenario) -> list[object]:
    """Every VMM action the scenario asks for, from a guest's GUEST_SYNC or the VMM."""
    steps: list[object] = [op.action for ops in _programs(scenario) for op in ops
                           if isinstance(op, Host)]
    return steps + [s.action if isinstance(s, Do) else s for s in scenario.host]


def _own_routing(scenario: Scenario) -> bool:
    """The scenario replaces the default GSI n -> SPI 32+n routing (KVM_SET_GSI_ROUTING)."""
    return any(isinstance(a, SetGsiRouting) for a in _vmm_actions(scenario))


def _irqfd_spis(scenario: Scenario) -> dict[str, int]:
    """eventfd -> the SPI its non-resampling irqfd raises (default GSI routing only)."""
    if _own_routing(scenario):
        return {}
    return {a.eventfd: 32 + a.gsi for a in _vmm_actions(scenario)
            if isinstance(a, IrqfdAssign) and not a.resample}


def _injected(action: object, fds: dict[str, int],
              edge: set[int]) -> tuple[str, int] | None:
    """(path, SPI) when ``action`` injects an edge SPI, else None."""
    match action:
        case Mmio(reg="ISPENDR", intid=n, write=True) if n in edge:
            return "ispendr", n
        case InjectEdge(intid=n) if n in edge:
            return "irq_line", n
        case WriteIspendr(intid=n) if n in edge:
            return "userspace_ispendr", n
        case IrqfdSignal(eventfd=fd, context=ctx) if fds.get(fd, -1) in edge:
            return ("irqfd_hardirq" if ctx == "hardirq" else "irqfd"), fds[fd]
    return None


def injection_paths(scenario: Scenario) -> set[str]:
    """The paths the scenario injects its edge SPIs by."""
    edge, fds = _edge_spis(scenario), _irqfd_spis(scenario)
    found = set()
    for ops in _programs(scenario):
        for op in ops:
            hit = _injected(op.action if isinstance(op, Host) else op, fds, edge)
            if hit:
                found.add(hit[0])
    for step in scenario.host:
        hit = _injected(step.action if isinstance(step, Do) else step, fds, edge)
        if hit:
            found.add(hit[0])
    return found


def _injection(scenario: Scenario, path: str) -> Variation:
    label = f"edge SPIs by {PATH_TEXT[path]}"
    if path.startswith("irqfd") and _own_routing(scenario):
        return Variation("injection", label, None,
                         "the scenario sets its own GSI routing: no GSI known to raise the SPI")
    edge, fds = _edge_spis(scenario), _irqfd_spis(scenario)
    assigned: set[int] = set()

    def action(spi: int) -> list[HostAction]:
        """The actions that inject ``spi`` by ``path`` (the assignment on first use)."""
        if path == "irq_line":
            return [InjectEdge(spi)]
        fd = f"{_FD}{spi}"
        ctx = "hardirq" if path == "irqfd_hardirq" else "task"
        first = [] if spi in assigned else [IrqfdAssign(spi - 32, fd)]
        assigned.add(spi)
        return [*first, IrqfdSignal(fd, ctx)]

    def guest(ops: list[GuestOp]) -> list[GuestOp]:
        out: list[GuestOp] = []
        for op in ops:
            hit = _injected(op.action if isinstance(op, Host) else op, fds, edge)
            if hit is None:
                out.append(op)
            elif path == "ispendr":
                out.append(Mmio("ISPENDR", hit[1]))
            else:
                out += [Host(a) for a in action(hit[1])]
        return out

    def host(steps: list[HostStep]) -> list[HostStep] | None:
        out: list[HostStep] = []
        for step in steps:
            act = step.action if isinstance(step, Do) else step
            hit = _injected(act, fds, edge)
            if hit is None:
                out.append(step)
            elif path == "ispendr":
                return None  # a VMM step has no guest position to put the write at
            else:
                out += action(hit[1])
        return out

    steps = host(scenario.host)
    if steps is None:
        return Variation("injection", label, None,
                         "the VMM injects: no guest program position for the write")
    plans = [GuestPlan(guest(p.ops), None if p.handler is None else guest(p.handler))
             for p in scenario.guests]
    return Variation("injection", label,
                     dataclasses.replace(scenario, guests=plans, host=steps))

