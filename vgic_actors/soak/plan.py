"""The generator's plan of one scenario: its interrupts and what each vCPU does.

`generate.py` draws the base plan and the first reach shapes; `shapes.py` adds the
in-flight shapes; both then render the plan to scenario data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Irq:
    """One generated interrupt, injected once (or, if ``uncertain``, maybe never taken)."""

    klass: str  # spi, sgi, ppi, lpi, or timer (vINTID 27, the guest's virtual timer)
    intid: int
    target: int
    priority: int
    injector: str = ""  # SPIs: profile.INJECTORS, or "hw" (a forwarded physical line)
    sender: int = 0
    first: int = -1  # a re-routed SPI / MOVI'd LPI: its first vCPU (target: the second)
    hwintid: int = 0  # a HW SPI: the physical INTID it is mapped to
    uncertain: bool = False  # its fate is the architecture's choice (DISCARD in flight)


@dataclass
class Plan:
    vcpus: int
    v2: bool
    eoimode1: list[bool]
    defer: list[bool]
    late_unmask: list[bool]
    slow_handler: list[bool]
    lrs: int = 1
    timeslice: int = 0  # a shape's time slice for the VM (0: the one the base plan drew)
    strategy: str = ""  # a shape's search strategy (run.strategy: the portfolio follows it)
    irqs: list[Irq] = field(default_factory=list)
    no_tdir: str = ""  # "host_tdir" or "host_common_trap": the hyp handles trapped DIRs
    edge_spis_queued: int = 0  # the VM's history (vm.edge_spis_queued, `_long_lived`)
    reroute: Irq | None = None  # an SPI re-routed, or an LPI MOVI'd, while in flight
    hold: dict[int, int] = field(default_factory=dict)  # vCPU A -> B: A masked until B done
    toggle: list[int] = field(default_factory=list)  # SPIs disabled and re-enabled
    nested: list[bool] = field(default_factory=list)
    icactiver: dict[int, int] = field(default_factory=dict)  # vCPU -> its one INTID
    last_hw: dict[int, Irq] = field(default_factory=dict)  # vCPU -> its HW irq, taken last
    its_after: list[Any] = field(default_factory=list)  # vCPU0's ITS ops after injecting
    inflight: dict[int, list[Any]] = field(default_factory=dict)  # vCPU -> after its IAR
    remote_writes: list[tuple[int, Any]] = field(default_factory=list)  # vCPU0's, (v, op)
    burst: list[int] = field(default_factory=list)  # masked until vCPU0 stores "burst"

    def mine(self, v: int) -> list[Irq]:
        """The interrupts that end up targeting vCPU ``v``."""
        return [i for i in self.irqs if i.target == v]

    def lpi_event(self, irq: Irq) -> int:
        """The ITS EventID of LPI ``irq`` (device 0, events numbered in plan order)."""
        return [i for i in self.irqs if i.klass == "lpi"].index(irq)
