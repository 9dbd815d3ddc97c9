"""The scenario file format, as msgspec Structs (unknown keys are errors).

A scenario names a VM (``vm``), configures interrupts before the vCPUs run
(``irqs``), gives each vCPU a guest program (``guests``, operations decoded by
``vgic_actors.scenario.ops``), optionally scripts the VMM (``host``), and says
what must come out (``expect``: final state, counters, and a verdict per
variant). docs/scenarios.md is the user's reference.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

Byte = Annotated[int, Meta(ge=0, le=255)]
VcpuIndex = Annotated[int, Meta(ge=0, le=7)]
Verdict = str | list[str]
MAX_STEPS = 1_000_000  # the step budget's ceiling (about a minute of one run)


class Base(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Every section rejects keys it does not know."""


class ArchSection(Base):
    """Architectural switches: a preset (arm, qemu, kvm-emulation) and single overrides."""

    preset: Literal["arm", "qemu", "kvm-emulation"] = "arm"
    vgrp0d_condition: Literal["veng0", "veng1"] | None = None
    np_counts_pending_active: bool | None = None
    underflow_count: Literal["valid", "not_elrsr"] | None = None
    eoir_eoimode1_counts: bool | None = None
    eoir_without_apr: Literal["ignore", "lookup"] | None = None
    apr_drop_tie: Literal["group0", "group1"] | None = None


class VmSection(Base):
    """The VM: guest GIC model, sizes, host facts. Omitted fields take config/defaults.yaml."""

    gic: Literal["v2", "v3"] | None = None
    vcpus: Annotated[int, Meta(ge=1, le=8)] | None = None
    pcpus: Annotated[int, Meta(ge=1, le=8)] | None = None
    lrs: Annotated[int, Meta(ge=1, le=16)] | None = None
    nr_spis: Annotated[int, Meta(ge=32, le=988, multiple_of=32)] | None = None
    pri_bits: Annotated[int, Meta(ge=5, le=8)] | None = None
    host_gic: Literal["v2", "v3"] | None = None
    host_tdir: bool | None = None
    host_common_trap: bool | None = None
    ipi_latency: Annotated[int, Meta(ge=1)] | None = None
    unbounded_ipi_latency: bool = False
    timeslice: Annotated[int, Meta(ge=1)] | None = None
    edge_spis_queued: Annotated[int, Meta(ge=0, le=2**32)] | None = None
    arch: ArchSection = msgspec.field(default_factory=ArchSection)


IntId = Annotated[int, Meta(ge=0)]


class IrqSection(Base):
    """One interrupt's configuration before the vCPUs run (as the VMM/firmware left it).

    ``vcpu`` picks the copy of a private interrupt (SGI/PPI); ``target`` routes an
    SPI. ``hw`` maps it to that physical INTID (kvm_vgic_map_phys_irq).
    """

    intid: IntId
    vcpu: VcpuIndex | None = None
    trigger: Literal["edge", "level"] | None = None
    priority: Byte | None = None
    group: Literal[0, 1] | None = None
    target: VcpuIndex | None = None
    enabled: bool | None = None
    hw: Annotated[int, Meta(ge=16, le=1019)] | None = None


class FinalIrq(Base):
    """Expected final state of one interrupt (omitted fields are not checked).

    ``ap_list``: the vCPU whose ap_list holds it, or ``none``.
    """

    intid: IntId
    vcpu: VcpuIndex | None = None
    active: bool | None = None
    pending: bool | None = None
    ap_list: VcpuIndex | Literal["none"] | None = None


class Counters(Base):
    """Expected counters at the end of the run (omitted ones are not checked)."""

    active_spis: Annotated[int, Meta(ge=0)] | None = None
    # Tables (INTID or vCPU -> value) are checked entry by entry by the loader, so an
    # error names its key: acks INTID -> count, eoicount vCPU -> count, tdir vCPU -> bool.
    acks: dict[Any, Any] | None = None
    eoicount: dict[Any, Any] | None = None
    tdir: dict[Any, Any] | None = None  # ICH_HCR_EL2.TDIR at the vCPU's last entry


class WarningsSpec(Base):
    """Warnings judged like invariants: each ``required`` one must be reported in some run,
    no ``forbidden`` one in any."""

    required: list[str] = msgspec.field(default_factory=list)
    forbidden: list[str] = msgspec.field(default_factory=list)


class VerdictSpec(Base):
    """A verdict in full: what the runs must find (``found``), on which variant with which
    kernel switches changed (``variant``, ``kernel``: a named control runs a variant with
    single switches flipped), and this variant's own ``final``, ``counters`` and
    ``warnings`` (instead of the top-level ones; given here, they are judged even when
    ``found`` is not ``pass``, so ``expectation`` may be among the invariants found);
    ``max_steps``: this label's step budget (a control that livelocks early needs less)."""

    found: str | list[str] = "pass"
    variant: str | None = None
    kernel: dict[Any, Any] = msgspec.field(default_factory=dict)  # KernelSwitches overrides
    final: list[FinalIrq] | None = None
    counters: Counters | None = None
    warnings: WarningsSpec | None = None
    max_steps: Annotated[int, Meta(ge=100, le=MAX_STEPS)] | None = None


class Expect(Base):
    """What must come out. ``verdicts``: variant (or a named control) -> ``pass``, the
    invariant(s) the scheduler must find violated (a negative control), or a
    `VerdictSpec` mapping. Unlisted variants must pass."""

    final: list[FinalIrq] = msgspec.field(default_factory=list)
    counters: Counters = msgspec.field(default_factory=Counters)
    warnings: WarningsSpec = msgspec.field(default_factory=WarningsSpec)
    verdicts: dict[Any, Any] = msgspec.field(default_factory=dict)  # label -> Verdict


class RunSection(Base):
    """How the scenario is run by default (the command line overrides each)."""

    seeds: Annotated[int, Meta(ge=1, le=100_000)] | None = None
    strategy: str | None = None
    max_steps: Annotated[int, Meta(ge=100, le=MAX_STEPS)] | None = None


class GuestSection(Base):
    """One vCPU's guest: its program and the IRQ handler it installs (a template name or ops)."""

    ops: list[Any] = msgspec.field(default_factory=list)
    handler: str | list[Any] | None = None


class ScenarioFile(Base):
    """The top level of a scenario file."""

    name: str | None = None
    description: str = ""
    vm: VmSection = msgspec.field(default_factory=VmSection)
    irqs: list[IrqSection] = msgspec.field(default_factory=list)
    templates: dict[Any, Any] = msgspec.field(default_factory=dict)  # name -> operations
    guests: dict[Any, Any] = msgspec.field(default_factory=dict)  # vcpuN -> program
    host: list[Any] = msgspec.field(default_factory=list)
    kernel: dict[Any, Any] = msgspec.field(default_factory=dict)  # KernelSwitches overrides
    expect: Expect = msgspec.field(default_factory=Expect)
    run: RunSection = msgspec.field(default_factory=RunSection)


class Defaults(Base):
    """config/defaults.yaml: what a scenario leaves out."""

    vm: VmSection
    run: RunSection
    log_events: bool = True
    default_scenario: str = "default-scenario.yaml"
