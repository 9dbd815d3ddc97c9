"""The hot/cold liveness monitors (checks/liveness.py) and the resample oracle's upper bound
(checks/resample.py): each catches a planted bug, and stays cold on legal behaviour."""

from dataclasses import replace
from pathlib import Path

import yaml

from vgic_actors.checks.liveness import MI_STORM
from vgic_actors.kvm import vgic
from vgic_actors.scenario import load_scenario
from vgic_actors.scenario.loader import parse_scenario
from vgic_actors.scenario.runner import run_once
from vgic_actors.scenario.source import load_source

LIVENESS = {"stuck-active", "undelivered", "level-unacked", "mi-storm"}


def scenario(text, name="t.yaml"):
    return parse_scenario(load_source(text, name))


def broken(scn, seeds, variant="merged", strategy="random"):
    """Every invariant broken over ``seeds``, and the runs that broke each."""
    out: dict[str, list[int]] = {}
    for seed in seeds:
        for name in run_once(scn, variant, seed, strategy).broken:
            out.setdefault(name, []).append(seed)
    return out


def never_quiet():
    """pseudo_lr_window (F1/F2 on merged) with vCPU1 spinning for ever at the end: the run
    never goes quiet, so deactivation-lost (judged at a quiet end) cannot see a loss;
    stuck-active can."""
    data = yaml.safe_load(Path("scenarios/pseudo_lr_window.yaml").read_text())
    data["guests"]["vcpu1"].append({"wait": {"var": "never", "value": 1}})
    data["name"], data["run"] = "never_quiet", {"max_steps": 3000}
    del data["expect"]
    return scenario(yaml.safe_dump(data))


def one_vcpu(ops, **sections):
    """A one-vCPU scenario: group 1 on, PMR open unless ``pmr``, then ``ops``."""
    pmr = sections.pop("pmr", 0xF8)
    data = {"name": "t", "vm": {"vcpus": 1, "timeslice": 4},
            "guests": {"vcpu0": [{"group_enable": True}, {"pmr": pmr}, *ops]}, **sections}
    return scenario(yaml.safe_dump(data))


def test_stuck_active_sees_f1_f2_in_runs_that_never_settle():
    """Merged loses the DIR in some runs (F1/F2) and the monitor names them; the fix for
    both never trips it, although every run spends its budget."""
    scn = never_quiet()
    merged = broken(scn, range(60))
    assert "stuck-active" in merged and "deactivation-lost" not in merged, merged
    fixed = broken(scn, range(60), variant="merged+fix-all")
    assert set(fixed) == {"livelock"}, fixed


def test_stuck_active_names_how_long_it_was_hot():
    scn = never_quiet()
    seed = next(s for s in range(60) if "stuck-active" in run_once(scn, "merged", s,
                                                                   "random").broken)
    report = run_once(scn, "merged", seed, "random")
    text = next(v.message for v in report.violations if v.invariant == "stuck-active")
    assert "SPI 32 is still Active" in text and "hot for " in text and " vt (since vt " in text
    # where it was lost, as for a quiet run's deactivation-lost (checks/loss.py)
    assert report.signature.site.startswith("undo:vgic_v3_fold_lr<-vgic_v3_fold_lr_state,clear:")


def waits_for_40(pmr=0xF8):
    """SPI 40 (priority 0xa0) made pending by the guest, which then waits for it."""
    return one_vcpu([{"write": {"reg": "ISENABLER", "intid": 40}},
                     {"write": {"reg": "ISPENDR", "intid": 40}}, {"ack": 40}, {"eoir": 40}],
                    pmr=pmr)


def test_undelivered_catches_a_flush_that_never_presents_the_interrupt(monkeypatch):
    """Planted: the target oracle forgets SPI 40, so no flush puts it in an LR (and prune
    drops it). The guest waits for ever; the monitor names the interrupt it waits for."""
    real = vgic.vgic_target_oracle
    monkeypatch.setattr(vgic, "vgic_target_oracle",
                        lambda irq, enabled: None if irq.intid == 40 else real(irq, enabled))
    found = broken(waits_for_40(), range(3))
    assert set(found) == {"deadlock", "undelivered"}, found


def test_undelivered_is_cold_when_the_pmr_masks_the_interrupt():
    """The same wait with SPI 40 (priority 0xa0) at the PMR: not deliverable, so only the
    deadlock, and the unplanted kernel with PMR open passes."""
    assert set(broken(waits_for_40(0xA0), range(3))) == {"deadlock"}
    assert broken(waits_for_40(), range(3)) == {}


def level_line():
    """A level SPI 40 whose line the VMM raises and holds once the guest is ready."""
    return one_vcpu([{"write": {"reg": "ISENABLER", "intid": 40}},
                     {"store": {"var": "ready", "value": 1}}, {"ack": 40}, {"eoir": 40}],
                    irqs=[{"intid": 40, "trigger": "level"}],
                    host=[{"do": "wait", "var": "ready", "value": 1},
                          {"do": "set_level", "intid": 40, "level": True}])


def test_level_unacked_catches_a_held_line_never_presented(monkeypatch):
    """Planted as above, for a level SPI whose line the VMM holds high."""
    real = vgic.vgic_target_oracle
    monkeypatch.setattr(vgic, "vgic_target_oracle",
                        lambda irq, enabled: None if irq.intid == 40 else real(irq, enabled))
    found = broken(level_line(), range(3))
    assert "level-unacked" in found and "undelivered" not in found, found


def test_level_unacked_is_cold_on_the_kernel_as_merged():
    assert "level-unacked" not in broken(level_line(), range(3))


def test_level_unacked_is_cold_on_f3_storms():
    """F3 (merged never resamples): the line stays high and the guest takes it again and
    again; it is acknowledged, so this monitor stays cold (resample-lost is F3)."""
    found = broken(load_scenario("scenarios/irqfd_resample.yaml"), range(6),
                   strategy="pct:3")
    assert "resample-lost" in found and not LIVENESS & set(found), found


def spinner():
    """A guest that spins for ever on a word nobody writes."""
    return one_vcpu([{"wait": {"var": "never", "value": 1}}], run={"max_steps": 2000})


def test_mi_storm_catches_an_underflow_mi_that_holds_at_entry(monkeypatch):
    """Planted: configure_hcr always sets UIE (underflow: at most one valid LR), which holds
    at every entry of a vCPU with nothing in its LRs: each entry exits with an MI."""
    real = vgic.vgic_configure_hcr
    monkeypatch.setattr(vgic, "vgic_configure_hcr",
                        lambda *a, **kw: replace(real(*a, **kw), uie=True))
    report = run_once(spinner(), "merged", 0, "random")
    storm = [v for v in report.violations if v.invariant == "mi-storm"]
    assert storm and "maintenance-interrupt exits with no guest operation" in storm[0].message
    took = int(storm[0].message.split(" took ")[1].split()[0])
    assert took >= MI_STORM


def test_mi_storm_is_cold_on_a_guest_that_only_spins():
    assert broken(spinner(), range(3)) == {"livelock": [0, 1, 2]}


def test_resample_extra_catches_a_double_notification(monkeypatch):
    """Planted: kvm_notify_acked_irq runs the ack notifiers twice. On a GICv2 host (whose
    fold notifies every EOI: merged passes there) the resamplefd is signalled twice per
    deactivation; KVM's fold decided once, so the extra one is the notifier's."""
    scn = load_scenario("scenarios/irqfd_resample_gicv2_v2host.yaml")
    assert broken(scn, range(3), strategy="pct:3") == {}
    real = vgic.kvm_notify_acked_irq

    async def twice(routing, irqchip, pin):
        await real(routing, irqchip, pin)
        await real(routing, irqchip, pin)

    monkeypatch.setattr(vgic, "kvm_notify_acked_irq", twice)
    report = run_once(scn, "merged", 0, "pct:3")
    extra = [v for v in report.violations if v.invariant == "resample-extra"]
    assert extra and extra[0].how == "irqfd_resampler_ack"
    assert extra[0].outcome == "extra-signal"
    assert report.signature.key.startswith("ordering/resample-extra")



DATA = Path(__file__).parent / "data"


def storm_peer():
    """A default-soak finding on merged (campaign seed 0, run 5440), kept with its choice
    log: F3's storm (level SPI 48 behind a resampling irqfd, never lowered) on vcpu3,
    which the guest takes 1,389 times, while SGI 5 of the same priority (0xc0) waits,
    until the step budget cuts the run."""
    scn = load_scenario(DATA / "storm_peer.yaml")
    return run_once(scn, "merged", 7278240877117634787,
                    f"replay:{DATA / 'storm_peer.choices.json'}")


def test_undelivered_is_cold_on_an_equal_priority_peer_of_a_storm():
    """Equal priorities are the CPU interface's choice (IMPLEMENTATION DEFINED): while the
    guest keeps taking the storming SPI 48, SGI 5 may wait. Only F3 is left."""
    report = storm_peer()
    assert report.signature.key == "ordering/resample-lost/vgic_v3_fold_lr:no-notify", \
        report.signature.key


def test_the_storm_peer_would_be_judged_without_the_tie_rule(monkeypatch):
    """Not vacuous: judging SGI 5 alone (the lowest INTID of the tie, as before the rule)
    reports it undelivered in the same run."""
    from vgic_actors.checks.liveness import LivenessMonitors

    real = LivenessMonitors._unserved
    monkeypatch.setattr(LivenessMonitors, "_unserved",
                        lambda self, vid, intid: intid == 48 or real(self, vid, intid))
    report = storm_peer()
    assert "undelivered" in report.broken, report.broken
