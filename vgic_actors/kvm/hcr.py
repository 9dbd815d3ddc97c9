"""Maintenance-interrupt and trap configuration on entry (vgic-v3.c / vgic-v2.c configure_hcr)."""

from __future__ import annotations

from dataclasses import replace

from vgic_actors.arch.registers import IchHcr, IchVmcr
from vgic_actors.kvm.ap_list import ApListSummary
from vgic_actors.kvm.variants import KernelSwitches


def vgic_configure_hcr(
    als: ApListSummary,
    vmcr: IchVmcr,
    nr_lr: int,
    sw: KernelSwitches,
    *,
    v3: bool,
    host_tdir_cap: bool,
    active_spis: int,
) -> IchHcr:
    """The shadow ICH_HCR_EL2 for the next entry, rebuilt from scratch (EOIcount zeroed).

    vgic-v3.c: vgic_v3_configure_hcr (vgic-v2.c: vgic_v2_configure_hcr for v3=False).
    NPIE when pending overflows; LRENPIE when actives may be outside; UIE on
    any overflow; vSGIEOICount when no SGI is listed; an exit on any group
    enable change; TDIR when the host lacks TDIR (forced), actives are outside
    the LRs, or ``active_spis`` (the caller's atomic_read) is non-zero.
    Variant pre-series: UIE only, no group MIs, no TDIR.
    """
    hcr = IchHcr(en=True)
    if sw.overflow_mis == "full":
        hcr.npie = als.pending_outside_lrs(nr_lr)
        hcr.lrenpie = als.active_outside_lrs(nr_lr)
        hcr.vsgieoicount = v3 and als.nr_sgi == 0
    hcr.uie = als.outside_lrs(nr_lr)
    if sw.group_enable_mis:
        hcr.vgrp0die, hcr.vgrp0eie = vmcr.veng0, not vmcr.veng0
        hcr.vgrp1die, hcr.vgrp1eie = vmcr.veng1, not vmcr.veng1
    if v3 and sw.dir_trapping:
        forced = sw.tdir_forced_without_cap and not host_tdir_cap
        hcr.tdir = forced or als.active_outside_lrs(nr_lr) or active_spis != 0
    return hcr


def hardware_hcr(shadow: IchHcr, sw: KernelSwitches, *, v3: bool, host_tdir_cap: bool,
                 common_trap: bool = False) -> IchHcr:
    """What the hyp writes to ICH_HCR_EL2 at entry: the shadow OR the boot-time trap constant.

    hyp/vgic-v3-sr.c: compute_ich_hcr; the constant is vgic-v3.c:
    kvm_compute_ich_hcr_trap_bits. On hosts without TDIR it holds TC (since the
    series), as it does with kvm-arm.vgic_v3_common_trap (``common_trap``), so
    ICV_DIR_EL1 traps with the whole common group.
    """
    constant_tc = common_trap or (sw.dir_trapping and not host_tdir_cap)
    return replace(shadow, tc=shadow.tc or (v3 and constant_tc))
