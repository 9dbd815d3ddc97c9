"""The in-flight shapes: HW-mapped lines, ITS commands, GICD writes, bursts, GICv2 hosts.

Each shape has a probability in the profile and draws from its own random stream
(``random.Random(f"NAME-{seed}")``), so a profile that leaves it at 0 generates what it
did before, and changing one weight leaves the other shapes' choices alone. They run
after the base plan and `generate._reach`, in the order of `add_shapes`, and never
touch a vCPU that writes ICACTIVER-then-DIR (its handler knows one INTID only). Why the
expectations each writes are the architecture's:

* ``hw_timer``: the guest's virtual timer (vINTID 27, mapped by kvm_timer_enable to the
  host's vtimer PPI: arch_timer.c, 1c3b3cadcd69) on a vCPU that deactivates its own
  interrupts. The vCPU arms it (CNTV_CVAL = CNTVCT + delay, ENABLE) only once all its
  other interrupts are acknowledged, and its handler disables it (CNTV_CTL = 0) right
  after IAR: the line drops before the EOIR/DIR deactivates the physical PPI (LR HW
  bit, or KVM for a trapped DIR), so it fires exactly once. Disabling an unarmed timer
  in the handlers of the earlier interrupts changes nothing.
* ``hw_spi``: an SPI forwarded from a physical line (``irqs: [{hw: H}]``, as
  kvm_vgic_map_irq does for VFIO). Its target stores ``hwready<v>`` once its other
  interrupts are acknowledged; the VMM then asserts the line, and the handler lowers it
  (GUEST_SYNC ``phys_deassert``) before EOIR, so the host handler injects it once. The
  target may hand its DIR on (the DIR of a HW SPI from another vCPU: vgic_v3_deactivate
  deactivates the physical one).
* ``its_discard``: DISCARD of an LPI after its INT, on a vCPU with no other interrupt.
  The architecture lets a DISCARDed interrupt be taken (if already forwarded) or not,
  and KVM keeps its pending state ("we don't bother": vgic-its.c,
  vgic_its_cmd_handle_discard), so its fate is open:
  no acknowledge count, its target does not wait for it, and only ``active: false`` is
  expected at the end (a taken one is deactivated by the handler).
* ``its_movi``: MOVI of an LPI to another collection (vCPU) after its INT: taken once,
  by either vCPU, so its first vCPU stays masked until the second has it (the re-route
  shape's hold). Not with a re-routed SPI (one hold per scenario).
* ``its_disable``: the LPI's enable bit cleared in the property table, INV (or INVALL of
  its collection), then set again with INV/INVALL, after its INT: a disabled LPI keeps
  its pending state, so it is taken exactly once (while still in an LR, or after the
  re-enable queues it again: update_lpi_config).
* ``inflight_write``: on a vCPU whose one interrupt is an edge SPI or GICv3 SGI, its
  handler writes GICD_ICPENDR or GICD_ISACTIVER of that interrupt right after IAR,
  while it is Active, or (an SPI or SGI of another vCPU) stores ``held<v>`` and waits
  for vCPU0 to write it and store ``written<v>``: clearing the pending state of an
  interrupt not pending, or setting the active state of an active one, changes
  nothing, so it is still taken once and ends inactive. On a one-vCPU VM (every
  vCPU in userspace, as KVM_SET_DEVICE_ATTR's kvm_trylock_all_vcpus needs) whose
  interrupts are all such, the VMM's ISACTIVER or ICPENDR write (GUEST_SYNC) of the
  INTID just acknowledged instead, or with EOImode 1 and no nesting its ICACTIVER:
  deactivated there, the EOIR only drops the priority and the DIR finds nothing.
* ``multi_overflow``: 2 or more vCPUs get more interrupts than LRs (guest ISPENDR SPIs
  from vCPU0), and stay masked until vCPU0 has injected them all (``burst``), so their
  ap_lists overflow at once. vCPU0 then unmasks only after its injections (it never
  waits for a burst vCPU before storing ``burst``). Not on a common-trap host whose
  plan `_privatize` left without SPIs (an SPI would set TDIR there).
* ``v2_no_tdir``: a GICv2 guest on a GICv3 host without ICH_HCR_EL2.TDIR.
* ``entry_race``: GICv3 guests on a VM with no history. An edge SPI is re-targeted to
  vCPU0 (or, if none can be, one more is added); vCPU0 injects it first (a GICD_ISPENDR
  write: its queueing is the VM's first 0 -> 1 of active_spis and its broadcast), takes
  it with no exit before the hand-off (unmasked before its injections, so it takes it
  before it injects the others, unless another vCPU waits for what vCPU0 does later: a
  burst, a held re-routed SPI, a remote write), and hands its DIR to vCPU1 (both then run
  EOImode 1, as the base plan's hand-offs; vCPU0 has no private or level interrupt, so
  every DIR it hands on is one vCPU1 may do). The VM gets the shortest time slice (4), a
  host with TDIR (a no-TDIR host's hyp handles every DIR) and no nested handler
  (nesting orders injections by priority): vCPU1 is then often inside its run-loop
  entry when the broadcast lands (scenarios/entry_window.yaml, generated: the window
  where kvm_arch_vcpu_ioctl_run re-checks requests after the IN_GUEST_MODE store, and
  where vgic_v3_configure_hcr reads active_spis). A GICv2 guest's DIR goes through the
  GICV page, which TDIR does not trap. Where an SPI is routed before it is injected, who
  injects an edge SPI and when, and the time slice change nothing the guest may
  observe, so every expectation stands. The scenario names the entry-window search as
  its strategy (``run.strategy: window``), which the portfolio follows: random walk and
  PCT do not schedule that race.
* ``long_lived``: a VM that has queued and deactivated 2^32 - 1 edge SPIs before the run
  (``vm.edge_spis_queued``): the run starts with the active_spis that history leaves
  (docs/findings.md F6). It changes nothing the guest may observe, so every expectation
  stands.
"""

from __future__ import annotations

import random
from typing import Any

from vgic_actors.soak.plan import Irq, Plan
from vgic_actors.soak.profile import Profile

VTIMER = 27
HW_OFFSET = 100  # a HW SPI's physical INTID: its vINTID + 100


def add_shapes(plan: Plan, profile: Profile, seed: int) -> None:
    """Add the in-flight shapes (module docstring) to ``plan``, each from its own stream."""
    for name, shape in _SHAPES:
        if getattr(profile, name) > 0:
            shape(plan, getattr(profile, name), random.Random(f"{name}-{seed}"))


def _plain(plan: Plan, v: int) -> bool:
    """vCPU ``v`` may take one more interrupt of a new shape (its handler is generic)."""
    return v not in plan.icactiver and v not in plan.last_hw and v not in plan.inflight


def _timer(plan: Plan, p: float, rng: random.Random) -> None:
    own = [v for v in range(plan.vcpus) if not plan.defer[v] and _plain(plan, v)]
    if not own or rng.random() >= p:
        return
    v = rng.choice(own)
    irq = Irq("timer", VTIMER, v, rng.choice((0x60, 0x80, 0xA0, 0xC0)))
    irq.sender = rng.randint(0, 40)  # the delay: CNTV_CVAL = CNTVCT + delay
    plan.irqs.append(irq)
    plan.last_hw[v] = irq


def _hw_spi(plan: Plan, p: float, rng: random.Random) -> None:
    moved = plan.reroute.intid if plan.reroute is not None else -1
    spis = [i for i in plan.irqs if i.klass == "spi" and i.injector != "level_irqfd"
            and i.intid != moved and i.intid not in plan.toggle and _plain(plan, i.target)]
    if not spis or rng.random() >= p:
        return
    irq = rng.choice(spis)
    irq.injector, irq.hwintid = "hw", irq.intid + HW_OFFSET
    plan.last_hw[irq.target] = irq


def _lpi(plan: Plan, rng: random.Random, ok: list[int]) -> Irq | None:
    """An LPI of ``plan`` no other ITS shape uses, targeting one of ``ok``; else a new
    one (GICv3 guests only: no ITS on GICv2)."""
    if plan.v2 or not ok:
        return None
    busy = {i.intid for i in plan.irqs if i.uncertain} | (
        {plan.reroute.intid} if plan.reroute is not None else set())
    busy |= {op["lpi_config"]["intid"] for op in plan.its_after if "lpi_config" in op}
    free = [i for i in plan.irqs if i.klass == "lpi" and i.intid not in busy and i.target in ok]
    if free:
        return rng.choice(free)
    intid = 8192 + sum(i.klass == "lpi" for i in plan.irqs)
    irq = Irq("lpi", intid, rng.choice(ok), rng.choice((0x60, 0x80, 0xA0, 0xC0)))
    plan.irqs.append(irq)
    return irq


def _its_discard(plan: Plan, p: float, rng: random.Random) -> None:
    # Only on a vCPU with no other interrupt (its wfi_until cannot count one that may
    # never come, nor tell it from another) that deactivates its own (the next vCPU
    # counts the hand-offs it will get).
    ok = [v for v in range(plan.vcpus) if not plan.defer[v] and not plan.mine(v)
          and v not in plan.hold]
    if rng.random() >= p or (irq := _lpi(plan, rng, ok)) is None:
        return
    irq.uncertain = True
    plan.its_after.append({"its": {"cmd": "DISCARD", "device": 0,
                                   "event": plan.lpi_event(irq)}})


def _its_movi(plan: Plan, p: float, rng: random.Random) -> None:
    if plan.reroute is not None or plan.hold or rng.random() >= p:
        return
    free = [v for v in range(plan.vcpus) if not plan.defer[v]]

    def seconds(first: int) -> list[int]:
        """Where the LPI may move: a vCPU that counts it (never one whose wfi_until an
        interrupt of open fate could satisfy)."""
        return [v for v in free if v != first and _plain(plan, v)
                and not any(i.uncertain for i in plan.mine(v))]

    holdable = [v for v in free if not (v > 0 and plan.defer[v - 1])
                and v not in plan.icactiver and v not in plan.burst and seconds(v)]
    if (irq := _lpi(plan, rng, holdable)) is None:
        return
    irq.first, irq.target = irq.target, rng.choice(seconds(irq.target))
    plan.reroute = irq
    plan.hold[irq.first] = irq.target
    plan.its_after.append({"its": {"cmd": "MOVI", "device": 0, "event": plan.lpi_event(irq),
                                   "collection": irq.target}})


def _its_disable(plan: Plan, p: float, rng: random.Random) -> None:
    ok = [v for v in range(plan.vcpus) if v not in plan.icactiver
          and not any(i.uncertain for i in plan.mine(v))]
    if rng.random() >= p or (irq := _lpi(plan, rng, ok)) is None:
        return
    event = plan.lpi_event(irq)
    inv = ({"its": {"cmd": "INV", "device": 0, "event": event}} if rng.random() < 0.5
           else {"its": {"cmd": "INVALL", "collection": irq.target}})
    for enable in (False, True):
        plan.its_after += [{"lpi_config": {"intid": irq.intid, "enable": enable,
                                           "priority": irq.priority}}, inv]


def _writable(plan: Plan, irq: Irq) -> bool:
    """An edge SPI or GICv3 SGI whose state only its one injection and its handler move."""
    return (irq.klass in ("spi", "sgi") and irq.injector not in ("level_irqfd", "hw")
            and not (plan.v2 and irq.klass == "sgi") and irq is not plan.reroute)


def _inflight_write(plan: Plan, p: float, rng: random.Random) -> None:
    for v in range(plan.vcpus):
        mine = plan.mine(v)
        if (plan.defer[v] or not mine or not _plain(plan, v) or v in plan.hold
                or rng.random() >= p or not all(_writable(plan, i) for i in mine)):
            continue
        if plan.vcpus == 1:
            # One vCPU (in userspace at its GUEST_SYNC, as kvm_trylock_all_vcpus needs):
            # the VMM's write of the INTID just acknowledged, whatever it is. ICACTIVER
            # with EOImode 1 and no nesting only: the EOIR then only drops the priority
            # and the DIR of an inactive interrupt finds no other active one (with
            # EOImode 0 the EOIR's deactivation would count in EOIcount against another).
            do = rng.choice(("write_isactiver", "write_icpendr") + (
                ("write_icactiver",) if plan.eoimode1[v] and not plan.nested[v] else ()))
            plan.inflight[v] = [{"host": {"do": do, "intid": "last", "vcpu": v}}]
            continue
        if len(mine) != 1:
            continue
        write = {"write": {"reg": rng.choice(("ICPENDR", "ISACTIVER")), "intid": mine[0].intid}}
        # From vCPU0 while v holds it, or from v's own handler. Not on a vCPU that takes
        # hand-offs: vCPU0's handler may wait for it while vCPU0's program waits for v.
        # An SPI only (an SGI's GICR_ISACTIVER0/ICPENDR0 write from vCPU0 reaches vCPU0's
        # own redistributor, not v's), and on one vCPU only: vCPU0 waits for each holder
        # in turn, so a second holder that sends the first one's SGI after it unmasks
        # would wait for vCPU0 while vCPU0 waits for the first (a cycle of spins).
        if (v != 0 and not plan.defer[v - 1] and mine[0].klass == "spi"
                and not plan.remote_writes and rng.random() < 0.5):
            plan.inflight[v] = [{"store": {"var": f"held{v}", "value": 1}},
                                {"wait": {"var": f"written{v}", "value": 1}}]
            plan.remote_writes.append((v, write))
        else:
            plan.inflight[v] = [write]


def _multi_overflow(plan: Plan, p: float, rng: random.Random) -> None:
    cand = [v for v in range(plan.vcpus) if _plain(plan, v) and v not in plan.hold]
    if len(cand) < 2 or rng.random() >= p:
        return
    if plan.no_tdir == "host_common_trap" and not any(i.klass == "spi" for i in plan.irqs):
        return  # `_privatize` keeps active_spis 0 for the hyp's own DIR: add no SPI
    used = {i.intid for i in plan.irqs if i.klass in ("spi", "timer")}
    pool = [s for s in range(32, 64) if s not in used]
    rng.shuffle(pool)
    lrs = plan.lrs
    targets = sorted(rng.sample(cand, rng.randint(2, len(cand))))
    for v in targets:
        for _ in range(max(0, lrs + 1 - len(plan.mine(v)))):
            if not pool:
                return
            plan.irqs.append(Irq("spi", pool.pop(), v, rng.choice((0x60, 0x80, 0xA0, 0xC0)),
                                 injector="guest_ispendr"))
        plan.burst.append(v)
    plan.late_unmask[0] = True  # vCPU0 stores "burst" before it can take an interrupt


def _v2_no_tdir(plan: Plan, p: float, rng: random.Random) -> None:
    if plan.v2 and not plan.no_tdir and rng.random() < p:
        plan.no_tdir = "host_tdir"


def _long_lived(plan: Plan, p: float, rng: random.Random) -> None:
    if rng.random() < p:
        plan.edge_spis_queued = 2**32 - 1


def _entry_race(plan: Plan, p: float, rng: random.Random) -> None:
    if plan.v2 or plan.no_tdir == "host_common_trap" or plan.edge_spis_queued:
        return  # no TDIR trap (GICV page), the hyp owns the DIRs, no first 0 -> 1
    moved = plan.reroute.intid if plan.reroute is not None else -1
    spis = [i for i in plan.irqs if i.klass == "spi" and i.intid != moved
            and i.injector in ("guest_ispendr", "host_inject", "irqfd")
            and i.intid not in plan.toggle and _plain(plan, i.target)
            and i.target not in plan.hold and i.target not in plan.burst]
    if not _may_hand_on(plan, 0) or rng.random() >= p:
        return
    if spis:
        irq = rng.choice(spis)
        irq.target = 0  # vCPU0 injects, takes and hands it to vCPU1: entry_window's pair
    else:  # none to move: one more, as the base plan draws them
        used = {i.intid for i in plan.irqs if i.klass in ("spi", "timer")}
        free = [s for s in range(32, 64) if s not in used]
        if not free:
            return
        irq = Irq("spi", rng.choice(free), 0, rng.choice((0x60, 0x80, 0xA0, 0xC0)))
        plan.irqs.append(irq)
    plan.eoimode1[0] = plan.eoimode1[1] = plan.defer[0] = True
    plan.slow_handler[0] = False  # no exit between its IAR and the hand-off
    if not plan.burst and not plan.hold and not plan.remote_writes:
        plan.late_unmask[0] = False  # takes it right after the write (nobody waits for
        # what vCPU0 does after it, so its handler's wait for vCPU1 blocks no one)
    irq.injector = "guest_ispendr"
    plan.no_tdir = ""  # a host with TDIR: configure_hcr decides whether DIRs trap
    plan.nested = [False] * plan.vcpus  # plan order is injection order (no priority sort)
    plan.irqs.remove(irq)
    plan.irqs.insert(0, irq)
    plan.timeslice = 4
    plan.strategy = "window"


def _may_hand_on(plan: Plan, v: int) -> bool:
    """vCPU ``v`` may take one more edge SPI and hand its DIRs to v + 1, as it does or as
    it may start to (both then run EOImode 1). Not when v is in another shape's
    one-interrupt handler, an overflow burst, or holds a DISCARDed LPI (its count of
    acknowledges would be open); to start, the base plan's rule (no private or level
    interrupt of v's own; neither held) and v + 1 not waiting in its handler for vCPU0's
    write (vCPU0 could then wait in its own for v + 1's DIR)."""
    if (v + 1 >= plan.vcpus or not _plain(plan, v) or v in plan.burst
            or any(i.uncertain for i in plan.mine(v))):
        return False
    if plan.defer[v]:
        return True
    return (v not in plan.hold and v not in plan.hold.values() and v + 1 not in plan.hold
            and v + 1 not in plan.icactiver
            and all(held != v + 1 for held, _ in plan.remote_writes)
            and all(i.klass in ("spi", "lpi") and i.injector != "level_irqfd"
                    for i in plan.mine(v)))


_SHAPES: tuple[tuple[str, Any], ...] = (
    ("hw_timer", _timer), ("hw_spi", _hw_spi), ("multi_overflow", _multi_overflow),
    ("its_discard", _its_discard), ("its_movi", _its_movi), ("its_disable", _its_disable),
    ("inflight_write", _inflight_write), ("v2_no_tdir", _v2_no_tdir),
    ("long_lived", _long_lived), ("entry_race", _entry_race),
)
