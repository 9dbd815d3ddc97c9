"""The hyp's own DIR handling runs exactly under the vgic_v3_cpuif_trap static key
(vgic-v3.c: vgic_v3_probe; hyp/include/hyp/switch.h: kvm_hyp_handle_sysreg;
hyp/vgic-v3-sr.c: __vgic_v3_perform_cpuif_access)."""

import io
from dataclasses import replace
from pathlib import Path

import msgspec
import pytest

from vgic_actors.kvm.vm import VmConfig
from vgic_actors.scenario import load_scenario
from vgic_actors.scenario.runner import run_once

SCENARIO = Path(__file__).parents[2] / "scenarios" / "hyp_dir_fast_path.yaml"


def dir_outcomes(variant, **vm):
    """The DirEmulated outcomes of one run of the library scenario, per vCPU."""
    scenario = load_scenario(SCENARIO)
    scenario = replace(scenario, vm=replace(scenario.vm, **vm))
    log = io.BytesIO()
    report = run_once(scenario, variant, 0, "random", log=log)
    events = [msgspec.json.decode(line) for line in log.getvalue().splitlines()]
    return report, [(e["vcpu"], e["outcome"]) for e in events if e.get("ev") == "DirEmulated"]


@pytest.mark.parametrize(("vm", "key"), [
    ({}, True),  # the scenario's host: TDIR and kvm-arm.vgic_v3_common_trap=1
    ({"host_common_trap": False, "host_tdir_cap": False}, True),  # no TDIR: TC anyway
    ({"host_common_trap": False}, False),  # a plain TDIR host: the key is off
])
def test_the_static_key_follows_the_trap_constant(vm, key):
    """On only when kvm_compute_ich_hcr_trap_bits yields a non-zero constant."""
    assert replace(VmConfig(host_common_trap=True), **vm).vgic_v3_cpuif_trap is key


def test_an_own_lr_dir_is_handled_at_el2_on_a_tdir_host_with_the_key_on():
    """merged, TDIR set in the shadow: vCPU0's DIR of its own LR's SPI 33 stays in the hyp;
    vCPU1's DIR of SPI 32 (in vCPU0's LR) is a full exit to vgic_v3_deactivate."""
    report, outcomes = dir_outcomes("merged")
    assert not report.violations
    assert outcomes == [(0, "hyp-lr"), (1, "icactiver")]


def test_every_trapped_dir_exits_when_the_key_is_off():
    """A plain TDIR host: no hyp handling at all, vgic_v3_deactivate sees both DIRs."""
    report, outcomes = dir_outcomes("merged", host_common_trap=False)
    assert not report.violations
    assert outcomes == [(0, "pseudo-lr"), (1, "icactiver")]


def test_with_tdir_clear_the_hyp_counts_what_no_lr_holds():
    """no-spi-tracking: shadow TDIR clear, the TC trap still lands in the hyp, whose
    __vgic_v3_write_dir bumps EOIcount for vCPU1's DIR as the hardware would."""
    _, outcomes = dir_outcomes("no-spi-tracking")
    assert outcomes == [(0, "hyp-lr"), (1, "hyp-eoicount")]


def test_before_the_fast_path_a_shadow_tdir_means_a_full_exit():
    """hyp_dir_fast_path off (v1-posted, before ca3c34da3644): vCPU0's own DIR exits too."""
    _, outcomes = dir_outcomes("v1-posted")
    assert outcomes == [(0, "pseudo-lr"), (1, "v1-inactive")]
