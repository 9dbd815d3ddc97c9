"""A soak profile: the ranges and weights scenarios are generated from (config/*.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import msgspec
from msgspec import Meta

from vgic_actors.scenario.loader import check_strategy, config_dir
from vgic_actors.scenario.ops import OpError, convert
from vgic_actors.scenario.schema import MAX_STEPS
from vgic_actors.scenario.source import load_file

Prob = Annotated[float, Meta(ge=0.0, le=1.0)]
Range = tuple[Annotated[int, Meta(ge=1)], Annotated[int, Meta(ge=1)]]


class Profile(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """What the generator may produce; see config/soak-default.yaml for each field."""

    vcpus: Range = (1, 4)
    gicv2_on_gicv3: Prob = 0.0
    lrs: Range = (1, 4)
    nr_spis: Annotated[int, Meta(ge=32, le=988, multiple_of=32)] = 32
    timeslice: Range = (4, 64)
    ipi_latency: Annotated[int, Meta(ge=1)] = 8
    interrupts: Range = (1, 6)
    classes: dict[str, Annotated[int, Meta(ge=0)]] = msgspec.field(
        default_factory=lambda: {"spi": 1})
    priorities: Annotated[list[Annotated[int, Meta(ge=0, le=0xF8)]], Meta(min_length=1)] = (
        msgspec.field(default_factory=lambda: [0xA0]))
    eoimode1: Prob = 0.5
    handoff: Prob = 0.5
    injectors: dict[str, Annotated[int, Meta(ge=0)]] = msgspec.field(
        default_factory=lambda: {"guest_ispendr": 1})
    late_handler_unmask: Prob = 0.3
    handler_exit: Prob = 0.4
    # The reach shapes (generate.py, `_reach`): drawn from their own random stream, so a
    # profile that leaves them at 0 generates what it generated before they existed.
    no_tdir_host: Prob = 0.0
    reroute: Prob = 0.0
    toggle_enable: Prob = 0.0
    nested: Prob = 0.0
    icactiver_dir: Prob = 0.0
    # The in-flight shapes (shapes.py), each from its own random stream as well.
    hw_timer: Prob = 0.0
    hw_spi: Prob = 0.0
    multi_overflow: Prob = 0.0
    its_discard: Prob = 0.0
    its_movi: Prob = 0.0
    its_disable: Prob = 0.0
    inflight_write: Prob = 0.0
    v2_no_tdir: Prob = 0.0
    long_lived: Prob = 0.0
    entry_race: Prob = 0.0
    strategy: str = "portfolio"
    max_steps: Annotated[int, Meta(ge=100, le=MAX_STEPS)] = 60_000


MAX_INTERRUPTS = 64
"""Interrupts per generated scenario at most (LPIs are numbered from 8192 up, one each)."""
CLASSES = ("spi", "sgi", "ppi", "lpi")
INJECTORS = ("guest_ispendr", "host_inject", "irqfd", "level_irqfd")
"""How an SPI is raised: a guest GICD_ISPENDR write, a VMM KVM_IRQ_LINE edge, an irqfd
(edge), or a level SPI behind a resampling irqfd (KVM_IRQFD_FLAG_RESAMPLE, VFIO INTx
style: the device asserts once and waits for the resample that the guest's EOI causes)."""


def load_profile(name_or_path: str | None) -> tuple[Profile, str]:
    """The profile at a path, or by name in config/ (``default`` -> soak-default.yaml);
    returns it with the file it came from."""
    name = name_or_path or "default"
    path = Path(name)
    if not path.suffix:
        path = config_dir() / f"soak-{name}.yaml"
    src = load_file(path)
    try:
        profile: Profile = convert(src.data or {}, Profile, "$")
    except OpError as exc:
        raise src.error(exc.path, exc.expected, exc.got, at_key=exc.at_key) from None
    for field, known in (("classes", CLASSES), ("injectors", INJECTORS)):
        table = getattr(profile, field)
        for key in table:
            if key not in known:
                raise src.error(f"$.{field}.{key}", f"one of {', '.join(known)}", repr(key),
                                at_key=True)
        if not any(table.values()):
            raise src.error(f"$.{field}", "at least one non-zero weight", "all zero")
    for field in ("vcpus", "lrs", "timeslice", "interrupts"):
        low, high = getattr(profile, field)
        if low > high:
            raise src.error(f"$.{field}", "[low, high] with low <= high", f"[{low}, {high}]")
    if profile.interrupts[1] > MAX_INTERRUPTS:
        raise src.error("$.interrupts", f"at most {MAX_INTERRUPTS} interrupts per scenario",
                        str(profile.interrupts[1]))
    if profile.strategy != "portfolio":
        check_strategy(profile.strategy, lambda exp, got: src.error("$.strategy", exp, got))
    if profile.vcpus[1] > 8 or profile.lrs[1] > 16:
        raise src.error("$.vcpus" if profile.vcpus[1] > 8 else "$.lrs",
                        "at most 8 vCPUs and 16 List Registers", "more")
    return profile, str(path)
