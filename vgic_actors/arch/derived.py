"""What the hardware computes continuously from LR, HCR and VMCR (gic-arch.md section 3).

Every function here is pure: its result depends only on its arguments.
hppvi/can_signal follow QEMU's hppvi_index / icv_hppi_can_preempt
(HighestPriorityVirtualInterrupt / CanSignalVirtualInterrupt in the Arm
pseudocode); EISR/ELRSR/MISR follow the ICH_EISR_EL2, ICH_ELRSR_EL2 and
ICH_MISR_EL2 descriptions, with the section-11 readings taken from ArchSwitches.
"""

from __future__ import annotations

from dataclasses import dataclass

from vgic_actors.arch.priority import IDLE_PRIORITY, gprio_mask, running_priority
from vgic_actors.arch.registers import CpuIfConfig, GicVersion, ListRegister, LRState
from vgic_actors.arch.state import CpuIfState


def group_enabled(st: CpuIfState, group: int) -> bool:
    """ICH_VMCR_EL2.VENG0/VENG1 for the LR's group."""
    return st.vmcr.veng1 if group else st.vmcr.veng0


def hppvi(st: CpuIfState) -> int | None:
    """Index of the highest-priority Pending LR whose group is enabled, or None.

    Only exactly-Pending LRs are candidates (Pending+Active is not). Priority
    0xff can never be selected; ties keep the lowest LR index.
    """
    vmcr = st.vmcr
    if not (vmcr.veng0 or vmcr.veng1):
        return None
    best, best_prio = None, IDLE_PRIORITY
    for n, lr in enumerate(st.lrs):
        if lr.state is not LRState.PENDING:
            continue
        if not (vmcr.veng1 if lr.group else vmcr.veng0):
            continue
        if lr.priority < best_prio:
            best, best_prio = n, lr.priority
    return best


def can_signal(config: CpuIfConfig, st: CpuIfState, lr: ListRegister) -> bool:
    """Whether ``lr`` passes En, the priority mask and the running priority.

    Masked when priority >= VPMR (equal is masked). With an active priority the
    LR's group priority must be strictly higher (numerically lower).
    """
    if not st.hcr.en or lr.priority >= st.vmcr.vpmr:
        return False
    rpr = running_priority(config, st.ap0r, st.ap1r)
    if rpr == IDLE_PRIORITY:
        return True
    mask = gprio_mask(st.vmcr, lr.group)
    return (lr.priority & mask) < (rpr & mask)


def virq_vfiq(config: CpuIfConfig, st: CpuIfState) -> tuple[bool, bool]:
    """The (vIRQ, vFIQ) lines to the vCPU.

    Group 1 raises vIRQ. Group 0 raises vFIQ on GICv3 (VFIQEn is RES1); on
    GICv2 it raises vFIQ only when GICH_VMCR.VMFIQEn is set, otherwise vIRQ.
    """
    n = hppvi(st)
    if n is None:
        return False, False
    lr = st.lrs[n]
    if not can_signal(config, st, lr):
        return False, False
    if lr.group == 1:
        return True, False
    if config.version is GicVersion.V2 and not st.vmcr.vfiqen:
        return True, False
    return False, True


def eisr(st: CpuIfState) -> int:
    """ICH_EISR_EL2: bit n set when LR n is Invalid, HW=0 and EOI=1 (an owed EOI MI)."""
    bits = 0
    for n, lr in enumerate(st.lrs):
        if lr.state is LRState.INVALID and not lr.hw and lr.eoi:
            bits |= 1 << n
    return bits


def elrsr(st: CpuIfState) -> int:
    """ICH_ELRSR_EL2: bit n set when LR n is Invalid and owes no EOI maintenance interrupt."""
    bits = 0
    for n, lr in enumerate(st.lrs):
        if lr.state is LRState.INVALID and (lr.hw or not lr.eoi):
            bits |= 1 << n
    return bits


@dataclass(frozen=True, slots=True)
class Misr:
    """ICH_MISR_EL2 / GICH_MISR: which maintenance-interrupt conditions hold."""

    eoi: bool = False
    u: bool = False
    lrenp: bool = False
    np: bool = False
    vgrp0e: bool = False
    vgrp0d: bool = False
    vgrp1e: bool = False
    vgrp1d: bool = False

    def encode(self) -> int:
        """The 32-bit register value (EOI bit 0 ... VGrp1D bit 7)."""
        bits = (self.eoi, self.u, self.lrenp, self.np,
                self.vgrp0e, self.vgrp0d, self.vgrp1e, self.vgrp1d)
        return sum(1 << i for i, b in enumerate(bits) if b)

    def __bool__(self) -> bool:
        return self.encode() != 0


def misr(config: CpuIfConfig, st: CpuIfState) -> Misr:
    """ICH_MISR_EL2 computed from LR, HCR and VMCR (section 3; readings per section 11)."""
    hcr, vmcr, sw = st.hcr, st.vmcr, config.switches
    if sw.underflow_count == "valid":
        used = sum(1 for lr in st.lrs if lr.state is not LRState.INVALID)
    else:
        used = len(st.lrs) - elrsr(st).bit_count()
    if sw.np_counts_pending_active:
        any_pending = any(lr.state.pending for lr in st.lrs)
    else:
        any_pending = any(lr.state is LRState.PENDING for lr in st.lrs)
    vgrp0d_enable = vmcr.veng1 if sw.vgrp0d_condition == "veng1" else vmcr.veng0
    return Misr(
        eoi=eisr(st) != 0,
        u=hcr.uie and used <= 1,
        lrenp=hcr.lrenpie and hcr.eoicount != 0,
        np=hcr.npie and not any_pending,
        vgrp0e=hcr.vgrp0eie and vmcr.veng0,
        vgrp0d=hcr.vgrp0die and not vgrp0d_enable,
        vgrp1e=hcr.vgrp1eie and vmcr.veng1,
        vgrp1d=hcr.vgrp1die and not vmcr.veng1,
    )


def maintenance_level(config: CpuIfConfig, st: CpuIfState) -> bool:
    """The maintenance interrupt (a level PPI to the host): En and any MISR bit.

    Equal to ``en and bool(misr(...))``, evaluated bit by bit with the LR scans last, as
    the run loop asks at every guest step (tests/arch/test_properties.py checks it)."""
    hcr, vmcr = st.hcr, st.vmcr
    if not hcr.en:
        return False
    if ((hcr.vgrp0eie and vmcr.veng0) or (hcr.vgrp1eie and vmcr.veng1)
            or (hcr.vgrp1die and not vmcr.veng1) or (hcr.lrenpie and hcr.eoicount != 0)):
        return True
    sw = config.switches
    if hcr.vgrp0die and not (vmcr.veng1 if sw.vgrp0d_condition == "veng1" else vmcr.veng0):
        return True
    lrs = st.lrs
    if any(lr.state is LRState.INVALID and not lr.hw and lr.eoi for lr in lrs):
        return True  # EISR != 0
    if hcr.uie:
        if sw.underflow_count == "valid":
            used = sum(1 for lr in lrs if lr.state is not LRState.INVALID)
        else:
            used = len(lrs) - elrsr(st).bit_count()
        if used <= 1:
            return True
    if hcr.npie:
        if sw.np_counts_pending_active:
            return not any(lr.state.pending for lr in lrs)
        return not any(lr.state is LRState.PENDING for lr in lrs)
    return False
