"""Load and validate a scenario file (and the built-in defaults) into a `Scenario`.

Everything a run needs is checked here, before any run starts, so that what
loads also runs: the YAML (scenario/source.py's limits and exact types), the
schema (msgspec, unknown keys rejected), INTIDs against the VM they live in, APR
indices against its priority bits, template arguments against the template, the
vCPU of a mapped PPI, acknowledgement counts an absent INTID can meet, vCPU names,
variant and invariant names in verdicts. It works on data (a `Source`), so a
scenario built in memory goes through the same checks. Each problem is one
InputError naming file:line:column, the ``$.path`` and what was expected.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from vgic_actors.arch.registers import GicVersion
from vgic_actors.arch.switches import PRESETS
from vgic_actors.checks import INVARIANTS
from vgic_actors.errors import InputError
from vgic_actors.guest import GuestOp, Mmio
from vgic_actors.guest.cpuif_ops import AprRead, AprWrite
from vgic_actors.guest.host import Do, Host, HostAction, HostStep, MapPhys
from vgic_actors.kvm.variants import VARIANTS, KernelSwitches
from vgic_actors.kvm.vm import VmConfig
from vgic_actors.scenario.host_ops import decode_host_steps
from vgic_actors.scenario.ops import DecodedOp, OpError, decode_ops, op_error_from_msgspec
from vgic_actors.scenario.schema import (
    MAX_STEPS,
    Counters,
    Defaults,
    Expect,
    FinalIrq,
    GuestSection,
    IrqSection,
    RunSection,
    ScenarioFile,
    VerdictSpec,
    VmSection,
    WarningsSpec,
)
from vgic_actors.scenario.source import Source, child_path, describe, load_file, load_source

LPI_MIN = 8192


def _builtin(name: str) -> Path:
    """A folder the wheel carries as vgic_actors/_NAME (pyproject.toml), else the
    checkout's NAME/ beside the package."""
    here = Path(__file__).resolve().parent.parent
    packaged = here / f"_{name}"
    return packaged if packaged.is_dir() else here.parent / name


def config_dir() -> Path:
    """The built-in config/ folder (inside the wheel, or the source checkout's)."""
    return _builtin("config")


def scenario_library() -> Path:
    """The scenario library, scenarios/ (inside the wheel, or the source checkout's)."""
    return _builtin("scenarios")


@dataclass(frozen=True)
class GuestPlan:
    """One vCPU's decoded program and IRQ handler."""

    ops: list[GuestOp]
    handler: list[GuestOp] | None


@dataclass(frozen=True)
class Judgement:
    """How one verdict label is run and judged (`Scenario.judgement`).

    ``variant`` and ``kernel``: the kernel it runs (a variant with single switches
    changed); ``found``: the invariants its runs must violate, sorted ([] = pass);
    ``final``/``counters``: the expectations judged when ``judge_expect``;
    ``required``/``forbidden``: warnings that must / must not be reported;
    ``max_steps``: the label's own step budget (None: the scenario's).
    """

    label: str
    variant: str
    kernel: tuple[tuple[str, object], ...] = ()
    found: list[str] = field(default_factory=list)
    final: list[FinalIrq] = field(default_factory=list)
    counters: Counters = field(default_factory=Counters)
    judge_expect: bool = True
    required: tuple[str, ...] = ()
    forbidden: tuple[str, ...] = ()
    max_steps: int | None = None


@dataclass(frozen=True)
class Scenario:
    """A validated scenario, ready to run under any variant and seed."""

    name: str
    file: str
    description: str
    digest: str
    vm: VmConfig
    irqs: list[IrqSection]
    guests: list[GuestPlan]
    host: list[HostStep]
    expect: Expect
    run: RunSection
    templates: dict[str, tuple[list[Any], str]] = field(repr=False, default_factory=dict)
    kernel: tuple[tuple[str, object], ...] = ()  # the file's `kernel:` (every label)
    judgements: dict[str, Judgement] = field(repr=False, default_factory=dict)

    def judgement(self, label: str) -> Judgement:
        """How ``label`` (a listed verdict, or any variant name) runs and is judged; an
        unlisted variant must pass with the top-level expectations."""
        listed = self.judgements.get(label)
        if listed is not None:
            return listed
        return Judgement(label, label, self.kernel, [], self.expect.final,
                         self.expect.counters, True, tuple(self.expect.warnings.required),
                         tuple(self.expect.warnings.forbidden))

    def expected_verdict(self, variant: str) -> list[str]:
        """The invariants ``variant`` must violate ([] = it must pass)."""
        return self.judgement(variant).found

    def variants(self) -> list[str]:
        """The variants the scenario lists a verdict for (merged when none)."""
        return list(self.expect.verdicts) or ["merged"]


def _convert(src: Source, value: Any, spec: type[Any], path: str) -> Any:
    try:
        return msgspec.convert(value, spec)
    except msgspec.ValidationError as exc:
        err = op_error_from_msgspec(str(exc), path, value, spec)
        raise src.error(err.path, err.expected, err.got, at_key=err.at_key) from None


@cache
def load_defaults() -> tuple[Defaults, dict[str, tuple[list[Any], str]]]:
    """config/defaults.yaml and config/templates.yaml (errors name those files)."""
    folder = config_dir()
    src = load_file(folder / "defaults.yaml")
    defaults = _convert(src, src.data if src.data is not None else {}, Defaults, "$")
    tsrc = load_file(folder / "templates.yaml")
    data = tsrc.data if tsrc.data is not None else {}
    if not isinstance(data, dict):
        raise tsrc.error("$", "a mapping of template names to operation lists", describe(data))
    templates = {str(k): (v, f"{tsrc.file}:{child_path('$', k)}") for k, v in data.items()}
    return defaults, templates


def load_scenario(path: Path | str) -> Scenario:
    """Read, parse and validate the scenario file at ``path``."""
    return parse_scenario(load_file(Path(path)))


def load_scenario_text(text: str, file: str = "<scenario>") -> Scenario:
    """Parse and validate scenario text (``file`` names it in errors)."""
    return parse_scenario(load_source(text, file))


def parse_scenario_data(data: Any, file: str) -> Scenario:
    """Validate scenario data built in memory (the soak's generator): the same schema and
    semantic checks as a file, without YAML; errors name ``file`` and the ``$.path``."""
    return parse_scenario(_DataSource(file=file, data=data))


class _DataSource(Source):
    """In-memory data: no line or column to report, only the path."""

    def error(self, path: str, expected: str, got: str, *,
              at_key: bool = False) -> InputError:  # noqa: ARG002 (no positions to pick)
        """An InputError naming the file and ``path`` (no position)."""
        return InputError(self.file, path, expected, got)


def parse_scenario(src: Source) -> Scenario:
    """Validate a parsed scenario against the schema and its own VM."""
    data = src.data
    if not isinstance(data, dict):
        raise src.error("$", "a mapping with sections vm, irqs, guests, host, expect",
                        describe(data) if data is not None else "an empty file")
    sf: ScenarioFile = _convert(src, data, ScenarioFile, "$")
    defaults, builtin_templates = load_defaults()
    vm = _vm_config(src, sf.vm, defaults.vm)
    templates = dict(builtin_templates)
    for key, body in sf.templates.items():
        tpath = child_path("$.templates", key)
        if not isinstance(key, str):
            raise src.error(tpath, "a template name (text)", describe(key), at_key=True)
        if not isinstance(body, list):
            raise src.error(tpath, "a list of operations", describe(body))
        templates[key] = (body, tpath)
    guests = _guests(src, sf, vm, templates)
    for i, irq in enumerate(sf.irqs):
        _check_irq(src, irq, vm, child_path("$.irqs", i))
    _check_expect(src, sf.expect, vm)
    kernel = _kernel_switches(src, sf.kernel, "$.kernel", ())
    judgements = {label: _judgement(src, label, verdict, sf.expect, kernel, vm)
                  for label, verdict in sf.expect.verdicts.items()}
    try:
        host = decode_host_steps(sf.host, "$.host")
    except OpError as exc:
        raise _located(src, exc) from None
    for i, step in enumerate(host):
        if isinstance(step, Do):
            _check_action(src, step.action, child_path("$.host", i), vm)
    run = RunSection(
        seeds=sf.run.seeds or defaults.run.seeds,
        strategy=sf.run.strategy or defaults.run.strategy,
        max_steps=sf.run.max_steps or step_budget(guests, host, defaults.run.max_steps),
    )
    if run.strategy is not None:
        check_strategy(run.strategy, lambda exp, got: src.error("$.run.strategy", exp, got))
    digest = hashlib.sha256(repr(data).encode()).hexdigest()[:16]
    name = sf.name or Path(src.file).stem
    return Scenario(name=name, file=src.file, description=sf.description.strip(), digest=digest,
                    vm=vm, irqs=sf.irqs, guests=guests, host=host, expect=sf.expect,
                    run=run, templates=templates, kernel=kernel, judgements=judgements)


STEPS_PER_OP = 100
"""The step budget per unit of scenario size when a file gives none: the library's runs
take 7-20 steps per unit under PCT (measured over its scenarios), so 100 leaves room for
random walks and spin-waits while a real livelock still ends the run."""


def scenario_size(guests: list[GuestPlan], host: list[HostStep], irqs: int) -> float:
    """Each guest's operations, its IRQ handler twice per interrupt it may take (entry and
    exit cost kernel steps; the interrupts spread over the vCPUs), the VMM's steps."""
    per_vcpu = max(irqs, 1) / max(len(guests), 1)
    return sum(len(g.ops) + 2 * len(g.handler or ()) * per_vcpu for g in guests) + len(host)


def step_budget(guests: list[GuestPlan], host: list[HostStep], default: int | None) -> int:
    """``run.max_steps`` when the file gives none: the default (config/defaults.yaml), or
    `STEPS_PER_OP` per unit of `scenario_size` if more, at most MAX_STEPS. Interrupts are
    counted from the acknowledges a program may wait for (`wfi_until`)."""
    acks = sum(getattr(op, "acks", 0) for g in guests for op in g.ops)
    size = scenario_size(guests, host, acks)
    return min(MAX_STEPS, max(default or 20_000, int(STEPS_PER_OP * size)))


_STRATEGY = re.compile(r"(random|trio|trio-batch|window)\Z"
                       r"|pct(?::([0-9]{1,2})(?::([0-9]{1,7}))?)?\Z")


def check_strategy(text: str, error: Any) -> None:
    """``random``, ``trio``, ``trio-batch``, ``window`` or ``pct[:D[:K]]`` (1 <= D <= 16,
    1 <= K <= MAX_STEPS: PCT's step horizon), in ASCII digits; ``error(expected, got)``
    builds the exception."""
    m = _STRATEGY.match(text)
    ok = m is not None and (m[2] is None or 1 <= int(m[2]) <= 16) and (
        m[3] is None or 1 <= int(m[3]) <= MAX_STEPS)
    if not ok:
        raise error("random, trio, trio-batch, window or pct:D[:K] with 1 <= D <= 16 and "
                    f"1 <= K <= {MAX_STEPS}", describe(text))


def _vm_config(src: Source, vm: VmSection, base: VmSection) -> VmConfig:
    def pick(name: str) -> Any:
        value = getattr(vm, name)
        return getattr(base, name) if value is None else value

    vcpus = pick("vcpus")
    if vm.pcpus is not None and vm.pcpus != vcpus:
        raise src.error("$.vm.pcpus", f"{vcpus} (the model places one vCPU per pCPU)",
                        str(vm.pcpus))
    gic = GicVersion.V2 if pick("gic") == "v2" else GicVersion.V3
    if gic is GicVersion.V2 and vcpus > 8:
        raise src.error("$.vm.vcpus", "at most 8 vCPUs on a GICv2 model", str(vcpus))
    host = GicVersion.V2 if pick("host_gic") == "v2" else GicVersion.V3
    if host is GicVersion.V2 and gic is GicVersion.V3:
        raise src.error("$.vm.host_gic", "v3 for a GICv3 guest (a GICv2 host runs GICv2 "
                        "guests only)", "v2")
    arch = PRESETS[vm.arch.preset]
    overrides = {k: getattr(vm.arch, k) for k in vm.arch.__struct_fields__
                 if k != "preset" and getattr(vm.arch, k) is not None}
    arch = replace(arch, **overrides)
    latency = None if vm.unbounded_ipi_latency else pick("ipi_latency")
    if vm.unbounded_ipi_latency and vm.ipi_latency is not None:
        raise src.error("$.vm.ipi_latency", "no ipi_latency with unbounded_ipi_latency: true",
                        str(vm.ipi_latency))
    return VmConfig(nr_vcpus=vcpus, nr_lr=pick("lrs"), nr_spis=pick("nr_spis"), gic_model=gic,
                    host_gic=host, host_tdir_cap=pick("host_tdir"),
                    host_common_trap=pick("host_common_trap"), pri_bits=pick("pri_bits"),
                    pre_bits=pick("pri_bits"), arch=arch, timeslice=pick("timeslice"),
                    ipi_latency=latency, edge_spis_queued=pick("edge_spis_queued"))


def _intid_ok(intid: int, vm: VmConfig) -> bool:
    return 0 <= intid < 32 + vm.nr_spis or (LPI_MIN <= intid < 1 << 24 and not vm.v2_model)


def _intid_range(vm: VmConfig, op: DecodedOp | None = None) -> str:
    lpis = "" if vm.v2_model or (op is not None and op.gicd) else (
        f" or an LPI {LPI_MIN}..{(1 << 24) - 1}")
    special = "" if op is None or op.gicd else ", 1020..1023"
    return f"0..{31 + vm.nr_spis}{special}{lpis}"


def _intid_expected(vm: VmConfig, op: DecodedOp | None = None) -> str:
    return f"an INTID this VM implements ({_intid_range(vm, op)})"


def _guests(src: Source, sf: ScenarioFile, vm: VmConfig,
            templates: dict[str, tuple[list[Any], str]]) -> list[GuestPlan]:
    names = {f"vcpu{n}": n for n in range(vm.nr_vcpus)}
    plans: list[GuestPlan | None] = [None] * vm.nr_vcpus
    for name, body in sf.guests.items():
        path = child_path("$.guests", name)
        if not isinstance(name, str) or name not in names:
            raise src.error(path, f"a vCPU name ({', '.join(names)})", repr(name))
        section = _convert(src, {"ops": body} if isinstance(body, list) else body,
                           GuestSection, path)
        ops_path = path if isinstance(body, list) else child_path(path, "ops")
        ops = _decode(src, section.ops, ops_path, templates, vm)
        handler = None
        if isinstance(section.handler, str):
            if section.handler not in templates:
                raise src.error(child_path(path, "handler"),
                                f"a template name ({', '.join(sorted(templates))})",
                                repr(section.handler))
            handler = _decode(src, [{"call": section.handler}], child_path(path, "handler"),
                              templates, vm)
        elif section.handler is not None:
            handler = _decode(src, section.handler, child_path(path, "handler"), templates, vm)
        plans[names[name]] = GuestPlan(ops, handler)
    return [p if p is not None else GuestPlan([], None) for p in plans]


def _decode(src: Source, items: Any, path: str, templates: dict[str, tuple[list[Any], str]],
            vm: VmConfig) -> list[GuestOp]:
    try:
        decoded = decode_ops(items, path, templates)
    except OpError as exc:
        raise _located(src, exc) from None
    nr_apr = vm.cpuif_config().nr_apr
    for d in decoded:
        if d.intid is not None and not _op_intid_ok(d, vm):
            raise _located(src, OpError(d.path + "." + d.field, _intid_expected(vm, d),
                                        str(d.intid)))
        if isinstance(d.op, Host):
            _check_action(src, d.op.action, d.path, vm)
        if isinstance(d.op, Mmio):
            _check_mmio_value(src, d.op, d.path)
        if isinstance(d.op, AprRead | AprWrite) and d.op.n >= nr_apr:
            raise _located(src, OpError(d.path + ".n", f"an APR index below {nr_apr} "
                                        f"(ICH_VTR_EL2.PREbits = {vm.cpuif_config().pre_bits}"
                                        f" gives {nr_apr} per group)", str(d.op.n)))
    return [d.op for d in decoded]


REG_FIELD_MAX = {
    "IPRIORITYR": (0xFF, "a priority byte 0..255 (GICD_IPRIORITYR<n> holds 8 bits per INTID)"),
    "ICFGR": (1, "1 (edge) or 0 (level): GICD_ICFGR<n>.Int_config<1>"),
    "IGROUPR": (1, "0 or 1 (GICD_IGROUPR<n> holds one bit per INTID)"),
    "IROUTER": (0xFF, "an Aff0 value 0..255 (GICD_IROUTER<n>.Aff0: the vCPU)"),
    "ITARGETSR": (0xFF, "a CPU mask 0..255 (GICD_ITARGETSR<n> holds 8 bits per INTID)"),
    "SGIR": (0xFFFFFFFF, "a 32-bit GICD_SGIR value"),
    "SPENDSGIR": (0xFF, "a source-CPU mask 0..255 (8 bits per SGI)"),
    "CPENDSGIR": (0xFF, "a source-CPU mask 0..255 (8 bits per SGI)"),
}
"""The width of each register's per-INTID field (a value above it is an error, never
silently masked); the set/clear-enable, -pending and -active registers hold one bit."""


def _check_mmio_value(src: Source, op: Mmio, path: str) -> None:
    """A GICD/GICR write's value, or a read's expected value, fits the field's width."""
    limit, expected = REG_FIELD_MAX.get(op.reg, (1, f"0 or 1 (GICD_{op.reg}<n> holds one bit "
                                                    "per INTID)"))
    value, name = (op.value, "value") if op.write else (op.expect, "expect")
    if value is not None and not 0 <= value <= limit:
        raise src.error(f"{path}.{name}", expected,
                        str(value) if value < 0 else hex(value))


def _op_intid_ok(d: DecodedOp, vm: VmConfig) -> bool:
    """An operation's INTID: one the VM implements; IAR/EOIR/DIR values may also be the
    special 1020..1023; GICD registers hold only INTIDs below 1020."""
    assert d.intid is not None
    if 1020 <= d.intid <= 1023:
        return not d.gicd
    if d.gicd and d.intid >= 1020:
        return False
    return _intid_ok(d.intid, vm)


def _check_action(src: Source, action: HostAction, path: str, vm: VmConfig) -> None:
    """What the kernel takes as given rather than checks: an in-kernel device maps a PPI
    for a vCPU that exists (kvm_vgic_map_phys_irq gets a struct kvm_vcpu)."""
    if isinstance(action, MapPhys) and action.vintid < 32 and action.vcpu >= vm.nr_vcpus:
        raise src.error(child_path(path, "vcpu"), f"a vCPU index below {vm.nr_vcpus} (the "
                        "vCPU whose PPI is mapped)", str(action.vcpu))


def _located(src: Source, exc: OpError) -> InputError:
    """An OpError as an InputError located in the scenario file."""
    return src.error(exc.path, exc.expected, exc.got, at_key=exc.at_key)


def _check_irq(src: Source, irq: IrqSection, vm: VmConfig, path: str) -> None:
    if not 0 <= irq.intid < 32 + vm.nr_spis:
        raise src.error(child_path(path, "intid"), f"an SGI, PPI or SPI of this VM "
                        f"(0..{31 + vm.nr_spis}; LPIs exist once the ITS maps them: use "
                        "lpi_config and its operations)", str(irq.intid))
    private = irq.intid < 32
    if private and irq.vcpu is not None and irq.vcpu >= vm.nr_vcpus:
        raise src.error(child_path(path, "vcpu"), f"a vCPU index below {vm.nr_vcpus}",
                        str(irq.vcpu))
    if not private and irq.vcpu is not None:
        raise src.error(child_path(path, "vcpu"), "no vcpu (only SGIs/PPIs are banked)",
                        str(irq.vcpu))
    if private and irq.target is not None:
        raise src.error(child_path(path, "target"), "no target (SGIs/PPIs are not routed)",
                        str(irq.target))
    if irq.target is not None and irq.target >= vm.nr_vcpus:
        raise src.error(child_path(path, "target"), f"a vCPU index below {vm.nr_vcpus}",
                        str(irq.target))
    if irq.intid < 16 and irq.trigger == "level":
        raise src.error(child_path(path, "trigger"), "edge (SGIs are always edge)", "'level'")


def _check_expect(src: Source, expect: Expect, vm: VmConfig) -> None:
    _check_final(src, expect.final, vm, "$.expect.final")
    _check_counters(src, expect.counters, vm, "$.expect.counters")
    _check_warnings(src, expect.warnings, "$.expect.warnings")


def _check_counters(src: Source, counters: Counters, vm: VmConfig, base: str) -> None:
    """The counters tables, entry by entry (normalised in place: integer keys)."""
    vcpus = f"a vCPU index below {vm.nr_vcpus}"
    acks_path = child_path(base, "acks")
    counters.acks = _table(src, counters.acks, acks_path,
                           lambda k: 0 <= k < 1 << 24, "an INTID (0..2^24-1)", Count)
    for intid, count in (counters.acks or {}).items():
        if count and not (_intid_ok(intid, vm) or 1020 <= intid <= 1023):
            raise src.error(child_path(acks_path, intid),
                            f"0 (this VM has no INTID {intid}: it implements "
                            f"{_intid_range(vm)})",
                            str(count))
    counters.eoicount = _table(src, counters.eoicount, child_path(base, "eoicount"),
                               lambda k: 0 <= k < vm.nr_vcpus, vcpus, Count)
    counters.tdir = _table(src, counters.tdir, child_path(base, "tdir"),
                           lambda k: 0 <= k < vm.nr_vcpus, vcpus, bool)


WARNINGS = [n for n, inv in INVARIANTS.items() if inv.kind == "warning"]


def _check_warnings(src: Source, spec: WarningsSpec, path: str) -> None:
    for key in ("required", "forbidden"):
        for i, name in enumerate(getattr(spec, key)):
            if name not in WARNINGS:
                raise src.error(child_path(child_path(path, key), i),
                                f"a warning name ({', '.join(WARNINGS)})", describe(name))


def _check_final(src: Source, finals: list[FinalIrq], vm: VmConfig, base: str) -> None:
    for i, final in enumerate(finals):
        path = child_path(base, i)
        if not _intid_ok(final.intid, vm) or 1020 <= final.intid < LPI_MIN:
            raise src.error(child_path(path, "intid"), _intid_expected(vm), str(final.intid))
        if final.intid < 32 and (final.vcpu is None or final.vcpu >= vm.nr_vcpus):
            raise src.error(child_path(path, "vcpu"),
                            f"the vCPU (0..{vm.nr_vcpus - 1}) whose SGI/PPI copy is meant",
                            "nothing" if final.vcpu is None else str(final.vcpu))
        if isinstance(final.ap_list, int) and final.ap_list >= vm.nr_vcpus:
            raise src.error(child_path(path, "ap_list"),
                            f"a vCPU index below {vm.nr_vcpus} or none",
                            str(final.ap_list))


def _kernel_switches(src: Source, table: dict[Any, Any], path: str,
                     base: tuple[tuple[str, object], ...]) -> tuple[tuple[str, object], ...]:
    """``kernel: {switch: value}``: KernelSwitches field names with values of their type,
    on top of ``base``."""
    hints = _switch_types()
    out = dict(base)
    for name, value in table.items():
        kpath = child_path(path, name)
        if name not in hints:
            raise src.error(kpath, f"a kernel switch ({', '.join(hints)}; "
                            "vgic-actors variants -v shows them)", describe(name), at_key=True)
        out[name] = _convert(src, value, hints[name], kpath)
    return tuple(out.items())


@cache
def _switch_types() -> dict[str, Any]:
    import typing

    return typing.get_type_hints(KernelSwitches)


def _judgement(src: Source, label: Any, verdict: Any, expect: Expect,
               kernel: tuple[tuple[str, object], ...], vm: VmConfig) -> Judgement:
    """One ``verdicts`` entry: a variant name or a named control (with ``variant``)."""
    path = child_path("$.expect.verdicts", label)
    if isinstance(verdict, dict):
        spec: VerdictSpec = _convert(src, verdict, VerdictSpec, path)
        found, fpath = spec.found, child_path(path, "found")
    elif isinstance(verdict, str | list):
        spec, found, fpath = VerdictSpec(), verdict, path
    else:
        raise src.error(path, "pass, an invariant name, a list of them or a mapping "
                        "{found, variant, kernel, final, counters, warnings}",
                        describe(verdict))
    if not isinstance(label, str) or (label not in VARIANTS and spec.variant is None):
        raise src.error(path, f"a variant name ({', '.join(VARIANTS)}), or a control's "
                        "name with variant: in its mapping", describe(label), at_key=True)
    variant = spec.variant or label
    if variant not in VARIANTS:
        raise src.error(child_path(path, "variant"), f"a variant name ({', '.join(VARIANTS)})",
                        describe(variant))
    names = [found] if isinstance(found, str) else found
    if not names:
        raise src.error(fpath, "pass or invariant names", "an empty list")
    judged = [n for n, inv in INVARIANTS.items() if inv.kind != "warning"]
    for j, name in enumerate(names):
        if name == "pass" and len(names) == 1:
            continue
        if name not in judged:
            raise src.error(fpath if isinstance(found, str) else child_path(fpath, j),
                            "pass or the invariants a negative control breaks ("
                            + ", ".join(judged) + ")", describe(name))
    invariants = [] if names == ["pass"] else sorted(names)
    own = spec.final is not None or spec.counters is not None
    if spec.final is not None:
        _check_final(src, spec.final, vm, child_path(path, "final"))
    if spec.counters is not None:
        _check_counters(src, spec.counters, vm, child_path(path, "counters"))
    warnings = spec.warnings or expect.warnings
    if spec.warnings is not None:
        _check_warnings(src, spec.warnings, child_path(path, "warnings"))
    return Judgement(
        label, variant, _kernel_switches(src, spec.kernel, child_path(path, "kernel"), kernel),
        invariants, expect.final if spec.final is None else spec.final,
        expect.counters if spec.counters is None else spec.counters,
        not invariants or own or "expectation" in invariants,
        tuple(warnings.required), tuple(warnings.forbidden), spec.max_steps)


Count = Annotated[int, Meta(ge=0)]


def _table(src: Source, table: dict[Any, Any] | None, path: str, key_ok: Callable[[int], bool],
           key_expected: str, value_type: Any) -> dict[int, Any] | None:
    """A counters table checked entry by entry: integer keys that ``key_ok``, values of
    ``value_type``."""
    if table is None:
        return None
    out: dict[int, Any] = {}
    for key, value in table.items():
        kpath = child_path(path, key)
        if isinstance(key, bool) or not isinstance(key, int) or not key_ok(key):
            raise src.error(kpath, key_expected, describe(key), at_key=True)
        out[key] = _convert(src, value, value_type, kpath)
    return out
