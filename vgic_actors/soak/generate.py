"""Generate a valid scenario (as plain YAML data) from a profile and a seed.

Every generated scenario is meant to pass on the kernel as written, so that any
violation a run finds is a finding, not a generator artefact. The shape:

* vCPU0 configures every SPI (priority, route, enable) and LPI (property table, ITS
  mappings); each vCPU configures its own SGIs/PPIs; then vCPU0 sets ``configured``.
* Injections, each of a distinct INTID, exactly once: SPIs by a guest GICD_ISPENDR
  write, a VMM KVM_IRQ_LINE or an irqfd, or, configured level, by a device behind a
  resampling irqfd that asserts once and waits for its resample (the guest's EOI lowers
  the line through irqfd_resampler_ack; its target deactivates it itself, so the
  resample comes from the fold or the pseudo-LR fold, never the ICACTIVER path, which
  the kernel does not make notify); SGIs by ICC_SGI1R_EL1 from a random vCPU;
  PPIs by the target's own GICR_ISPENDR0; LPIs by an ITS INT command.
* With probability ``gicv2_on_gicv3`` the guest is a GICv2 model on a GICv3 host (the
  host picks the fold and DIR paths: kvm_vgic_global_state.type): SPIs routed by
  ITARGETSR, SGIs sent through GICD_SGIR, no LPIs (no ITS on GICv2).
* Each vCPU handles its interrupts in an IRQ handler (EOImode 0: EOIR; EOImode 1: EOIR
  + DIR, or EOIR and a hand-off of the DIR to the next vCPU, which must run EOImode 1
  too). Hand-offs only go from vCPU v to v+1, so waits never form a cycle, and only
  vCPUs that handle their DIRs themselves receive SGIs and PPIs (private interrupts).
* A vCPU waits (``wfi_until``) for as many acknowledges as interrupts target it.

The reach shapes (`_reach`, weights ``no_tdir_host``, ``reroute``, ``toggle_enable``,
``nested``, ``icactiver_dir``), each drawn from its own random stream so that a profile
that leaves them at 0 generates what it did before, and each guaranteed by the
architecture:

* A host without ICH_HCR_EL2.TDIR (or booted with kvm-arm.vgic_v3_common_trap): every
  GICv3 DIR traps through TC and the hyp handles it (vgic-v3-sr.c:
  __vgic_v3_perform_cpuif_access), GICv3 guests only. A host without TDIR has TDIR
  forced (84792050e039); on a common-trap host most scenarios have no SPI at all
  (`_privatize`), so the shadow TDIR stays clear and the hyp emulates the DIR itself.
* A re-routed SPI: routed to vCPU A, injected, then vCPU0 writes GICD_IROUTER
  (ITARGETSR) to B. A pending SPI may be taken by either target until the change has
  propagated (KVM moves it only at A's next prune), so A keeps IRQs masked until B has
  taken it (B stores ``doneB`` after its ``wfi_until``); neither hands its DIRs on and
  A receives none, so nothing waits on A and no wait forms a cycle. The injection
  (preferably the VMM's) may race with the write.
* An SPI (preferably one the VMM injects, so the enable's queueing races with the
  injection's) disabled and re-enabled twice (GICD_ICENABLER, ISENABLER) by vCPU0
  after its injections, whatever state it is in: disabling keeps the pending state (and an
  Active one stays Active), so it is still taken exactly once.
* Nested preemption: the handler unmasks between IAR and EOIR (EOImode 1: DIR first,
  which leaves the active priority set) and exits there (a GICD read), so a
  higher-priority interrupt may preempt it; the running priority keeps equal and lower
  ones out. Not with hand-offs. With a nested handler in the plan, vCPU0 injects the
  lowest priority first (a later, higher one can then arrive during an earlier handler).
* A guest GICD_ICACTIVER write to the interrupt it holds (after EOIR, EOImode 1), an
  exit, then its DIR: deactivating an inactive interrupt has no effect (an EOIcount
  bump at most). Only on a vCPU that takes this one edge interrupt (an SPI or a GICv3
  SGI: KVM keeps a level interrupt's ISPENDR latch while it is Active, so an
  ICACTIVER after a fold would make it pending again).
"""

from __future__ import annotations

import random
from typing import Any

from vgic_actors.soak.plan import Irq as _Irq
from vgic_actors.soak.plan import Plan as _Plan
from vgic_actors.soak.profile import CLASSES, INJECTORS, Profile
from vgic_actors.soak.shapes import add_shapes

LPI_BASE = 8192
PPI_POOL = range(16, 25)  # below the timer PPIs


def _weighted(rng: random.Random, table: dict[str, int], allowed: tuple[str, ...]) -> str:
    names = [n for n in allowed if table.get(n, 0) > 0]
    return rng.choices(names, weights=[table[n] for n in names])[0]


def _plan(profile: Profile, rng: random.Random, v2: bool) -> tuple[_Plan, int, int]:
    n = rng.randint(*profile.vcpus)
    lrs = rng.randint(*profile.lrs)
    timeslice = rng.randint(*profile.timeslice)
    eoimode1 = [rng.random() < profile.eoimode1 for _ in range(n)]
    defer = [eoimode1[v] and v + 1 < n and eoimode1[v + 1] and rng.random() < profile.handoff
             for v in range(n)]
    plan = _Plan(n, v2, eoimode1, defer,
                 [rng.random() < profile.late_handler_unmask for _ in range(n)],
                 [rng.random() < profile.handler_exit for _ in range(n)], lrs)
    spis = list(range(32, 32 + profile.nr_spis))
    rng.shuffle(spis)
    sgis = list(range(16))
    rng.shuffle(sgis)
    ppis = list(PPI_POOL)
    rng.shuffle(ppis)
    lpi = LPI_BASE
    for _ in range(rng.randint(*profile.interrupts)):
        klass = _weighted(rng, profile.classes, CLASSES)
        if klass == "lpi" and v2:
            klass = "spi"
        pools = {"spi": spis, "sgi": sgis, "ppi": ppis}
        if klass != "lpi" and not pools[klass]:
            klass = "spi" if spis else "lpi"
        if klass == "lpi":
            intid, lpi = lpi, lpi + 1
        else:
            intid = pools[klass].pop()
        # A private interrupt can only be deactivated by its own vCPU: never send one to a
        # vCPU whose handler hands DIRs on (the last vCPU never does).
        targets = [v for v in range(n) if klass in ("spi", "lpi") or not plan.defer[v]]
        irq = _Irq(klass, intid, rng.choice(targets), rng.choice(profile.priorities))
        if klass == "spi":
            irq.injector = _weighted(rng, profile.injectors, INJECTORS)
            if irq.injector == "level_irqfd" and plan.defer[irq.target]:
                irq.injector = "irqfd"  # a handed-off DIR may take the ICACTIVER path
        elif klass == "sgi":
            irq.sender = rng.randrange(n)
        plan.irqs.append(irq)
    return plan, lrs, timeslice


def _reach(plan: _Plan, profile: Profile, rng: random.Random) -> None:
    """Add the reach shapes (module docstring) to ``plan``, from their own stream."""
    n = plan.vcpus
    plan.nested = [False] * n
    if not plan.v2 and rng.random() < profile.no_tdir_host:
        plan.no_tdir = rng.choice(("host_tdir", "host_common_trap"))
        if plan.no_tdir == "host_common_trap" and rng.random() < 0.9:
            _privatize(plan, rng)  # TDIR-capable: the shadow TDIR may stay clear
    spis = [i for i in plan.irqs if i.klass == "spi"]
    # No vCPU waits on a held vCPU: it neither hands DIRs on nor receives any.
    free = [v for v in range(n) if not plan.defer[v]]
    holdable = [v for v in free if not (v > 0 and plan.defer[v - 1])]
    movable = [i for i in spis if i.injector != "level_irqfd" and i.target in holdable]
    if len(free) >= 2 and movable and rng.random() < profile.reroute:
        hosted = [i for i in movable if i.injector != "guest_ispendr"]
        irq = rng.choice(hosted or movable)
        irq.first = irq.target
        irq.target = rng.choice([v for v in free if v != irq.first])
        plan.reroute = irq
        plan.hold[irq.first] = irq.target
    if spis and rng.random() < profile.toggle_enable:
        # Preferably one the VMM injects: its vgic_queue_irq_unlock may then race with the
        # enable's (the retry when something changed behind its back).
        hosted = [i for i in spis if i.injector not in ("guest_ispendr", "")]
        plan.toggle.append(rng.choice(hosted or spis).intid)
    for v in range(n):
        mine = [i for i in plan.irqs if i.target == v]
        if plan.defer[v]:
            continue
        if (plan.eoimode1[v] and len(mine) == 1 and mine[0].injector != "level_irqfd"
                and mine[0].klass in ("spi", "sgi")
                and not (plan.v2 and mine[0].klass == "sgi")
                and rng.random() < profile.icactiver_dir):
            plan.icactiver[v] = mine[0].intid
        elif rng.random() < profile.nested:
            plan.nested[v] = True


def _privatize(plan: _Plan, rng: random.Random) -> None:
    """Turn every SPI into an SGI (from a random sender) or, for a vCPU that hands its
    DIRs on (no private interrupts there), an LPI: with no SPI, active_spis stays 0 and
    TDIR clear, so the hyp's TC-trapped DIR emulation (__vgic_v3_write_dir) runs."""
    sgis = sorted(set(range(16)) - {i.intid for i in plan.irqs if i.klass == "sgi"})
    lpi = LPI_BASE + sum(i.klass == "lpi" for i in plan.irqs)
    for irq in plan.irqs:
        if irq.klass != "spi":
            continue
        irq.injector = ""
        if sgis and not plan.defer[irq.target]:
            irq.klass, irq.intid = "sgi", sgis.pop(rng.randrange(len(sgis)))
            irq.sender = rng.randrange(plan.vcpus)
        else:
            irq.klass, irq.intid, lpi = "lpi", lpi, lpi + 1


def _handler(plan: _Plan, v: int) -> list[Any]:
    ops: list[Any] = [{"iar": {"eret_if_spurious": True}}]
    if v in plan.icactiver:
        intid = plan.icactiver[v]
        # EOIR (a priority drop), GICD_ICACTIVER, an exit (prune drops the inactive
        # entry), then the DIR of an interrupt no longer active.
        return [*ops, {"eoir": "last"}, {"write": {"reg": "ICACTIVER", "intid": intid}},
                {"read": {"reg": "ISENABLER", "intid": 32}}, {"dir": intid}]
    ops += _after_iar(plan, v)
    if plan.nested[v]:
        # Unmasked between IAR and EOIR: a higher priority may preempt this handler.
        # EOImode 1 deactivates first (the active priority stays set until EOIR).
        ops += [{"dir": "last"}] if plan.eoimode1[v] else []
        # An exit while unmasked: the re-entry's flush puts the higher-priority pending
        # interrupts in the LRs, where they preempt this handler.
        ops += [{"unmask": None}, {"read": {"reg": "ISENABLER", "intid": 32}}]
        return [*ops, {"mask": None}, {"eoir": "last"}]
    if plan.slow_handler[v]:
        # The selftest's handler checks the state with GICD reads: an exit mid-handler,
        # after which KVM re-sorts the ap_list and may push the active one out of the LRs.
        ops.append({"read": {"reg": "ISENABLER", "intid": 32}})
    ops.append({"eoir": "last"})
    if plan.defer[v]:
        var = f"handoff{v}"
        ops += [{"store": {"var": var, "value": "last_ack"}},
                {"wait": {"var": var, "value": 0}}]
    elif plan.eoimode1[v]:
        ops.append({"dir": "last"})
    return ops


def _after_iar(plan: _Plan, v: int) -> list[Any]:
    """What the handler does right after IAR for the in-flight shapes (shapes.py): quiet
    its HW source (the timer off, the device's line low) and the GICD write in flight."""
    ops: list[Any] = []
    hw = plan.last_hw.get(v)
    if hw is not None and hw.klass == "timer":
        ops.append({"timer": {"ctl": 0}})
    elif hw is not None:
        ops.append({"host": {"do": "phys_deassert", "hwintid": hw.hwintid}})
    return ops + plan.inflight.get(v, [])


def _wait_acks(plan: _Plan, v: int) -> list[Any]:
    """wfi_until the interrupts certain to reach ``v``; a HW one (shapes.py) is raised
    only once the others are acknowledged: the timer armed, or ``hwready<v>`` stored."""
    n = sum(not i.uncertain for i in plan.mine(v))
    hw = plan.last_hw.get(v)
    if hw is None:
        return [{"wfi_until": n}] if n else []
    ops: list[Any] = [{"wfi_until": n - 1}] if n > 1 else []
    if hw.klass == "timer":
        ops.append({"timer": {"ctl": 1, "delay": hw.sender}})
    else:
        ops.append({"store": {"var": f"hwready{v}", "value": 1}})
    return [*ops, {"wfi_until": n}]


def _unmask(plan: _Plan, v: int) -> list[Any]:
    """PSTATE.I clear; a burst vCPU (shapes.py) first waits for vCPU0's "burst"."""
    if v in plan.burst and v != 0:
        return [{"wait": {"var": "burst", "value": 1}}, {"unmask": None}]
    return [{"unmask": None}]


def _program(plan: _Plan, v: int) -> list[Any]:
    ops: list[Any] = [{"group_enable": True}, {"pmr": 0xF8},
                      {"eoimode": int(plan.eoimode1[v])}]
    mine = [i for i in plan.irqs if i.target == v]
    for irq in mine:
        if irq.klass in ("sgi", "ppi", "timer"):
            ops.append({"write": {"reg": "IPRIORITYR", "intid": irq.intid,
                                  "value": irq.priority}})
        if irq.klass in ("ppi", "timer"):
            ops.append({"write": {"reg": "ISENABLER", "intid": irq.intid}})
    if v == 0:
        ops += _configure_shared(plan)
        ops.append({"store": {"var": "configured", "value": 1}})
    else:
        ops.append({"wait": {"var": "configured", "value": 1}})
    held = v in plan.hold  # a re-routed SPI's first target: masked until its second is done
    if not plan.late_unmask[v] and not held:
        ops += _unmask(plan, v)
    ops += _injections(plan, v)
    if held:
        ops.append({"wait": {"var": f"done{plan.hold[v]}", "value": 1}})
    if plan.late_unmask[v] or held:
        ops += _unmask(plan, v)
    if v > 0 and plan.defer[v - 1]:
        served = sum(1 for i in plan.irqs if i.target == v - 1)
        var = f"handoff{v - 1}"
        if served:
            ops.append({"repeat": {"count": served, "do": [
                {"wait_set": var}, {"dir": {"from_var": var}},
                {"store": {"var": var, "value": 0}}]}})
    ops += _wait_acks(plan, v)
    if v in plan.hold.values():
        ops.append({"store": {"var": f"done{v}", "value": 1}})
    ops.append({"mask": None})
    return ops


def _configure_shared(plan: _Plan) -> list[Any]:
    ops: list[Any] = []
    lpis = [i for i in plan.irqs if i.klass == "lpi"]
    for irq in plan.irqs:
        if irq.klass == "spi":
            ops += [{"write": {"reg": "IPRIORITYR", "intid": irq.intid, "value": irq.priority}},
                    _route(plan, irq.intid, irq.first if irq.first >= 0 else irq.target),
                    {"write": {"reg": "ISENABLER", "intid": irq.intid}}]
    if lpis:
        ops.append({"its": {"cmd": "MAPD", "device": 0, "size": 8}})
        for target in sorted(({i.target for i in lpis} | {i.first for i in lpis}) - {-1}):
            ops.append({"its": {"cmd": "MAPC", "collection": target, "target": target}})
        for event, irq in enumerate(lpis):
            ops += [{"lpi_config": {"intid": irq.intid, "priority": irq.priority}},
                    {"its": {"cmd": "MAPTI", "device": 0, "event": event, "intid": irq.intid,
                             "collection": irq.first if irq.first >= 0 else irq.target}}]
    return ops


def _route(plan: _Plan, intid: int, target: int) -> dict[str, Any]:
    """GICD_IROUTER (GICv2: ITARGETSR) routing ``intid`` to vCPU ``target``."""
    if plan.v2:
        return {"write": {"reg": "ITARGETSR", "intid": intid, "value": 1 << target}}
    return {"write": {"reg": "IROUTER", "intid": intid, "value": target}}


def _injections(plan: _Plan, v: int) -> list[Any]:
    ops: list[Any] = []
    if v == 0:  # first, to race with the VMM's injections right after "configured"
        for intid in plan.toggle:
            if intid in {i.intid for i in plan.irqs if i.injector != "guest_ispendr"}:
                ops += _toggle(intid)
    lpis = [i for i in plan.irqs if i.klass == "lpi"]
    # With a nested handler somewhere, inject the lowest priority first: a later, higher
    # one may then arrive while the handler of an earlier one runs unmasked.
    order = (sorted(plan.irqs, key=lambda i: -i.priority) if any(plan.nested)
             else plan.irqs)
    for irq in order:
        if irq.klass == "spi" and irq.injector == "guest_ispendr" and v == 0:
            ops.append({"write": {"reg": "ISPENDR", "intid": irq.intid}})
        elif irq.klass == "sgi" and irq.sender == v:
            ops.append({"sgi": {"intid": irq.intid, "targets": [irq.target]}})
        elif irq.klass == "ppi" and irq.target == v:
            ops.append({"write": {"reg": "ISPENDR", "intid": irq.intid}})
        elif irq.klass == "lpi" and v == 0:
            ops.append({"its": {"cmd": "INT", "device": 0, "event": lpis.index(irq)}})
    if v == 0 and plan.reroute is not None and plan.reroute.klass == "spi":
        ops.append(_route(plan, plan.reroute.intid, plan.reroute.target))
    if v == 0:
        for intid in plan.toggle:
            if intid in {i.intid for i in plan.irqs if i.injector == "guest_ispendr"}:
                ops += _toggle(intid)
        ops += plan.its_after  # DISCARD, MOVI, disable + INV in flight (shapes.py)
        if plan.burst:
            ops.append({"store": {"var": "burst", "value": 1}})
        for held, write in plan.remote_writes:  # while vCPU ``held`` holds it Active
            ops += [{"wait": {"var": f"held{held}", "value": 1}}, write,
                    {"store": {"var": f"written{held}", "value": 1}}]
    return ops


def _toggle(intid: int) -> list[Any]:
    """Disable and re-enable ``intid``, twice (GICD_ICENABLER, GICD_ISENABLER)."""
    return [{"write": {"reg": "ICENABLER", "intid": intid}},
            {"write": {"reg": "ISENABLER", "intid": intid}}] * 2


def _host(plan: _Plan) -> list[Any]:
    host = [i for i in plan.irqs if i.klass == "spi" and i.injector != "guest_ispendr"]
    if not host:
        return []
    steps: list[Any] = []
    irqfds = [i for i in host if i.injector in ("irqfd", "level_irqfd")]
    if irqfds:
        steps.append({"do": "set_gsi_routing", "entries": [
            {"gsi": k, "pin": irq.intid - 32} for k, irq in enumerate(irqfds)]})
        steps += [{"do": "irqfd_assign", "gsi": k, "eventfd": f"efd{k}",
                   **({"resample": True} if irq.injector == "level_irqfd" else {})}
                  for k, irq in enumerate(irqfds)]
    steps.append({"do": "wait", "var": "configured", "value": 1})
    for irq in host:
        if irq.injector in ("irqfd", "level_irqfd"):
            steps.append({"do": "irqfd_signal", "eventfd": f"efd{irqfds.index(irq)}"})
        elif irq.injector != "hw":
            steps.append({"do": "inject_edge", "intid": irq.intid})
    for irq in host:  # a HW SPI's line, once its target took its other interrupts
        if irq.injector == "hw":
            steps += [{"do": "wait", "var": f"hwready{irq.target}", "value": 1},
                      {"do": "phys_assert", "hwintid": irq.hwintid}]
    steps += [{"do": "wait_resample", "resamplefd": f"efd{irqfds.index(irq)}.resample"}
              for irq in host if irq.injector == "level_irqfd"]
    return steps


def generate(profile: Profile, seed: int) -> dict[str, Any]:
    """The scenario data for ``seed`` (deterministic: same profile and seed, same data)."""
    rng = random.Random(seed)
    # The host axis draws from its own stream, so a seed's GICv3 scenario stays the same
    # whatever the GICv2 weight.
    v2 = random.Random(f"gicv2-{seed}").random() < profile.gicv2_on_gicv3
    plan, lrs, timeslice = _plan(profile, rng, v2)
    _reach(plan, profile, random.Random(f"reach-{seed}"))
    add_shapes(plan, profile, seed)
    guests: dict[str, Any] = {}
    for v in range(plan.vcpus):
        guests[f"vcpu{v}"] = {"handler": _handler(plan, v), "ops": _program(plan, v)}
    # An interrupt of open fate (shapes.py: an LPI DISCARDed in flight, freed once
    # nothing holds it) has no final state to judge, nor an acknowledge count.
    final = [{"intid": i.intid, **({"vcpu": i.target} if i.intid < 32 else {}),
              "active": False, "pending": False} for i in plan.irqs if not i.uncertain]
    data: dict[str, Any] = {
        "name": f"gen-{seed}",
        "description": f"generated from seed {seed}: {plan.vcpus} vCPUs, {lrs} LRs, "
                       + ", ".join(f"{i.klass.upper()} {i.intid} -> vcpu{i.target}"
                                   for i in plan.irqs),
        "vm": {**({"gic": "v2", "host_gic": "v3"} if plan.v2 else {}),
               **({"host_tdir": False} if plan.no_tdir == "host_tdir" else
                  {"host_common_trap": True} if plan.no_tdir else {}),
               **({"edge_spis_queued": plan.edge_spis_queued} if plan.edge_spis_queued
                  else {}),
               "vcpus": plan.vcpus, "lrs": lrs, "nr_spis": profile.nr_spis,
               "timeslice": plan.timeslice or timeslice, "ipi_latency": profile.ipi_latency},
        "guests": guests,
        "expect": {"final": final, "counters": {"acks": {i.intid: 1 for i in plan.irqs
                                                          if not i.uncertain}}},
        "run": {"max_steps": profile.max_steps,
                **({"strategy": plan.strategy} if plan.strategy else {})},
    }
    levels = [{"intid": i.intid, "trigger": "level"} for i in plan.irqs
              if i.injector == "level_irqfd"]
    levels += [{"intid": i.intid, "trigger": "level", "hw": i.hwintid, "target": i.target}
               for i in plan.irqs if i.injector == "hw"]
    if levels:
        data["irqs"] = levels
    host = _host(plan)
    if host:
        data["host"] = host
    return data
