"""Named switches for the places where the Arm text, QEMU and KVM's own ICV
emulation disagree (gic-arch.md section 11). The defaults are the Arm reading.

Each field is one disagreement; its comment names the section-11 item and
the sources on each side. Items 11.7 (active_spis decrement only for EOI-bit
LRs) and 11.8 (the selftest library's Group-0 line) are not properties of the
CPU interface: 11.7 is a kernel variant switch (vgic_actors.kvm) and 11.8 is a
property of a guest program (scenarios).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

AprDropTie = Literal["group0", "group1"]
EoirWithoutApr = Literal["ignore", "lookup"]
UnderflowCount = Literal["valid", "not_elrsr"]
VGrp0DCondition = Literal["veng0", "veng1"]


@dataclass(frozen=True, slots=True)
class ArchSwitches:
    """How the model resolves each architectural disagreement. Defaults: the Arm text."""

    # 11.1 MISR.VGrp0D: the Arm text and KVM's NV emulation test VENG0 == 0;
    # QEMU's maintenance_interrupt_state tests VENG1 (a QEMU bug).
    vgrp0d_condition: VGrp0DCondition = "veng0"

    # 11.2 MISR.NP: does a Pending+Active LR count as "pending"? Arm: "no List
    # register is in the pending state" (P+A is a state of its own) and QEMU:
    # no. KVM's NV emulation tests the pending bit: yes.
    np_counts_pending_active: bool = False

    # 11.3 MISR.U: "valid" = LRs whose State != Invalid (Arm "zero or one
    # valid", QEMU); "not_elrsr" = LRs not flagged in ELRSR, so an Invalid LR
    # still owing an EOI maintenance interrupt counts as used (KVM NV).
    underflow_count: UnderflowCount = "valid"

    # 11.4 EOIR with EOImode == 1 and no matching LR: the Arm EOIcount text
    # counts only EOImode == 0 EOIRs (False). QEMU icv_eoir_write and KVM's
    # __vgic_v3_write_eoir increment regardless of EOImode (True).
    eoir_eoimode1_counts: bool = False

    # 11.5 EOIR when no active-priority bit is set: CONSTRAINED UNPREDICTABLE.
    # "ignore": return at once, no LR lookup, no EOIcount (QEMU, which says
    # Arm's implementation does this). "lookup": still look the INTID up in the
    # LRs and count a miss in EOIcount (KVM __vgic_v3_write_eoir).
    eoir_without_apr: EoirWithoutApr = "ignore"

    # 11.6 Priority drop when AP0Rn and AP1Rn have the same lowest set bit
    # (only reachable with UNPREDICTABLE guest behaviour): QEMU icv_drop_prio
    # clears the Group-0 bit, KVM __vgic_v3_clear_highest_active_priority
    # clears the Group-1 bit.
    apr_drop_tie: AprDropTie = "group0"


ARM = ArchSwitches()
"""The Arm reading of every disagreement (the default)."""

QEMU = ArchSwitches(vgrp0d_condition="veng1", eoir_eoimode1_counts=True)
"""QEMU's arm_gicv3_cpuif.c as cited in gic-arch.md."""

KVM_EMULATION = ArchSwitches(
    np_counts_pending_active=True,
    underflow_count="not_elrsr",
    eoir_eoimode1_counts=True,
    eoir_without_apr="lookup",
    apr_drop_tie="group1",
)
"""KVM's own software readings: vgic-v3-sr.c trap emulation and vgic-v3-nested.c MI state."""

PRESETS: dict[str, ArchSwitches] = {"arm": ARM, "qemu": QEMU, "kvm-emulation": KVM_EMULATION}
"""Named presets a scenario or the CLI may refer to."""
