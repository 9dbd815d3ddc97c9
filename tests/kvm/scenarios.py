"""Kernel-level scenarios built in Python (the YAML runner comes later), shared by tests."""

from __future__ import annotations

from dataclasses import dataclass

from vgic_actors.guest import (
    Ack,
    Dir,
    Eoir,
    GuestProgram,
    Mmio,
    SetEoiMode,
    SetGroupEnable,
    SetPmr,
    Store,
    WaitFor,
)
from vgic_actors.kvm.machine import Machine, start_vm
from vgic_actors.kvm.vm import VmConfig
from vgic_actors.runtime import RunResult, make_strategy, run


@dataclass
class Outcome:
    result: RunResult
    machine: Machine

    @property
    def failures(self) -> list[str]:
        return [f for g in self.machine.guests for f in g.failures]  # type: ignore[attr-defined]


def asym_dir_guests() -> list[GuestProgram]:
    """peer-tests.md A5 (vgic_irq.c guest_code_asym_dir): ack SPI 32 on vCPU0, DIR it on vCPU1."""
    common = [SetGroupEnable(), SetEoiMode(True), SetPmr(0xF8)]
    vcpu0 = GuestProgram("vcpu0", [
        *common,
        Mmio("ISENABLER", 32),
        Mmio("ISPENDR", 32),
        Ack(expect=32),
        Eoir(32),
        Store("word", 32),
        WaitFor("word", 0),
        Mmio("ISACTIVER", 32, write=False, expect=0),
    ])
    vcpu1 = GuestProgram("vcpu1", [*common, WaitFor("word", 32), Dir(32), Store("word", 0)])
    return [vcpu0, vcpu1]


def run_scenario(config: VmConfig, guests: list[GuestProgram], *, seed: int,
                 strategy: str = "pct", depth: int = 3, k: int = 300, max_steps: int = 20_000,
                 log=None, timing=None) -> Outcome:
    box: dict[str, Machine] = {}

    def setup(sched):
        box["m"] = start_vm(sched, config, guests)

    strat = make_strategy(strategy, seed, depth=depth, k=k)
    result = run(setup, strat, seed=seed, max_steps=max_steps, log=log,
                 variant=config.variant, scenario="asym_dir", timing=timing)
    return Outcome(result, box["m"])


def late_mi_overflow_guests() -> list[GuestProgram]:
    """EOImode 0 overflow with a late maintenance interrupt (bug K1, kernel-vgic.md 11.1).

    Two LRs. SPI 32 is acknowledged, then SPIs 33 and 34 become pending: the flush sorts
    pending first, so 33 and 34 take the LRs and active 32 is outside (LRENPIE set). The
    guest EOIs 32 (no LR: EOIcount 1, the MI rises) and goes on to acknowledge 33; if the
    MI lands only after that, the replay must deactivate 32, not 33.
    """
    ops = [
        SetGroupEnable(), SetPmr(0xF8),
        Mmio("ISENABLER", 32), Mmio("ISENABLER", 33), Mmio("ISENABLER", 34),
        Mmio("ISPENDR", 32), Ack(expect=32),
        Mmio("ISPENDR", 33), Mmio("ISPENDR", 34),
        Eoir(32), Ack(expect=33), Eoir(33), Ack(expect=34), Eoir(34),
        Mmio("ISACTIVER", 32, write=False, expect=0),
        Mmio("ISACTIVER", 33, write=False, expect=0),
        Mmio("ISACTIVER", 34, write=False, expect=0),
    ]
    return [GuestProgram("vcpu0", ops)]


NESTED = [(32, 0xA0), (33, 0x80), (34, 0x60), (35, 0x40)]  # a < b < c < d in priority


def nested_overflow_guests(eoimode: bool) -> list[GuestProgram]:
    """peer-tests.md S1 (EOImode 0) / S3 (EOImode 1): four nested actives through 2 LRs.

    a..d are acknowledged in rising priority, each preempting the last. S1 then EOIs d, c,
    b, a (deactivating). S3 EOIs all in reverse (priority drops only), then DIRs them in
    acknowledge order, the worst case for KVM's ordering assumptions.
    """
    ops: list = [SetGroupEnable(), SetPmr(0xF8), SetEoiMode(eoimode)]
    for intid, prio in NESTED:
        ops += [Mmio("IPRIORITYR", intid, value=prio), Mmio("ISENABLER", intid)]
    for intid, _ in NESTED:
        ops += [Mmio("ISPENDR", intid), Ack(expect=intid)]
    ops += [Eoir(intid) for intid, _ in reversed(NESTED)]
    if eoimode:
        ops += [Dir(intid) for intid, _ in NESTED]
    ops += [Mmio("ISACTIVER", intid, write=False, expect=0) for intid, _ in NESTED]
    return [GuestProgram("vcpu0", ops)]
