"""One vCPU's virtual CPU interface: guest ICV operations and hypervisor register writes.

Guest operations (gic-arch.md section 4) each do their trap check first and
return a ``Trap`` instead of acting when ICH_HCR_EL2 (or, on GICv2, the
stage-2 mapping of the GICV_DIR page) says so. Reads return the register
value, writes return None. The hypervisor's emulation of a trapped access
calls the same operation with ``trap_check=False``.

Sources: QEMU hw/intc/arm_gicv3_cpuif.c (icv_iar_read, icv_eoir_write,
icv_dir_write, icv_hppir_read, icv_rpr_read, icv_drop_prio, icv_find_active,
icv_deactivate_irq, icv_increment_eoicount, ich_*_write) and KVM's
arch/arm64/kvm/hyp/vgic-v3-sr.c (__vgic_v3_read_iar, __vgic_v3_write_eoir,
__vgic_v3_write_dir, ...). Where they disagree, ``config.switches`` decides.
"""

from __future__ import annotations

from collections.abc import Callable

from vgic_actors.arch import derived
from vgic_actors.arch.intid import LPI_MIN, SGI_MAX, SPECIAL_MIN, SPURIOUS, is_lpi, is_special
from vgic_actors.arch.priority import gprio_mask, lowest_set_bit, running_priority
from vgic_actors.arch.registers import (
    CpuIfConfig,
    GicVersion,
    IchHcr,
    IchVmcr,
    ListRegister,
    LRState,
)
from vgic_actors.arch.state import CpuIfState
from vgic_actors.arch.traps import IcvReg, Trap, trap_cause
from vgic_actors.errors import ArchUsageError

PhysicalDeactivate = Callable[[int], None]
"""Called with the pINTID when deactivating an HW=1 LR deactivates the physical interrupt."""

_IAR = (IcvReg.IAR0, IcvReg.IAR1)
_EOIR = (IcvReg.EOIR0, IcvReg.EOIR1)
_HPPIR = (IcvReg.HPPIR0, IcvReg.HPPIR1)
_BPR = (IcvReg.BPR0, IcvReg.BPR1)
_APR = (IcvReg.AP0R, IcvReg.AP1R)
_IGRPEN = (IcvReg.IGRPEN0, IcvReg.IGRPEN1)

# ICV_CTLR_EL1 (GICv3) fields
_CTLR_V3_CBPR, _CTLR_V3_EOIMODE, _CTLR_V3_PRIBITS_SHIFT, _CTLR_V3_IDBITS_SHIFT = 0, 1, 8, 11
# GICV_CTLR (GICv2) fields
_CTLR_V2_EN0, _CTLR_V2_EN1, _CTLR_V2_ACKCTL, _CTLR_V2_FIQEN, _CTLR_V2_CBPR = 0, 1, 2, 3, 4
_CTLR_V2_EOIMODE = 9


def _no_physical_gic(pintid: int) -> None:
    """Default physical-deactivation sink: no physical distributor is attached."""


class VirtualCpuInterface:
    """The GICv3 (or GICv2) virtual CPU interface of one vCPU.

    ``state`` is the live register file; the hypervisor side may read it
    directly, and writes it through ``write_lr``/``write_hcr``/``write_vmcr``
    (which apply the RES0/RES1 rules) or by assigning a saved ``CpuIfState``.
    """

    __slots__ = ("config", "on_physical_deactivate", "state")

    def __init__(
        self,
        config: CpuIfConfig,
        state: CpuIfState | None = None,
        on_physical_deactivate: PhysicalDeactivate | None = None,
    ) -> None:
        self.config = config
        self.on_physical_deactivate = on_physical_deactivate or _no_physical_gic
        if state is None:
            state = CpuIfState.reset(config)
            self.state = state
            self.write_vmcr(IchVmcr())  # KVM resets VMCR to 0: BPRs at minimum, RES1 bits set
        self.state = state
        if len(self.state.lrs) != config.nr_lr:
            raise ArchUsageError(f"state has {len(self.state.lrs)} LRs, config {config.nr_lr}")

    # --- derived state (section 3) ---------------------------------------------------------

    def hppvi(self) -> int | None:
        """Index of the highest-priority pending, group-enabled LR."""
        return derived.hppvi(self.state)

    def misr(self) -> derived.Misr:
        """ICH_MISR_EL2."""
        return derived.misr(self.config, self.state)

    def eisr(self) -> int:
        """ICH_EISR_EL2."""
        return derived.eisr(self.state)

    def elrsr(self) -> int:
        """ICH_ELRSR_EL2."""
        return derived.elrsr(self.state)

    def virq_vfiq(self) -> tuple[bool, bool]:
        """(vIRQ, vFIQ) as seen by the vCPU."""
        return derived.virq_vfiq(self.config, self.state)

    def maintenance_level(self) -> bool:
        """The level of the maintenance interrupt to the host."""
        return derived.maintenance_level(self.config, self.state)

    def running_priority(self) -> int:
        """ICV_RPR value, without a trap check."""
        return running_priority(self.config, self.state.ap0r, self.state.ap1r)

    # --- hypervisor-side writes (section 4.8) ----------------------------------------------

    def write_lr(self, n: int, lr: ListRegister) -> None:
        """ICH_LR<n>_EL2 write: checks field ranges, forces the RES0 priority bits to zero."""
        cfg = self.config
        if not 0 <= n < cfg.nr_lr:
            raise ArchUsageError(f"ICH_LR{n}_EL2: expected n in 0..{cfg.nr_lr - 1}")
        if not 0 <= lr.vintid <= cfg.max_vintid:
            raise ArchUsageError(f"ICH_LR{n}.vINTID: expected 0..{cfg.max_vintid}, got {lr.vintid}")
        if not 0 <= lr.priority <= 0xFF or lr.group not in (0, 1):
            raise ArchUsageError(f"ICH_LR{n}: priority 0..255 and group 0/1, got {lr}")
        pintid_max = 0x3FF if cfg.version is GicVersion.V2 else 0x1FFF
        if lr.hw and not 0 <= lr.pintid <= pintid_max:
            raise ArchUsageError(f"ICH_LR{n}.pINTID: expected 0..{pintid_max}, got {lr.pintid}")
        if lr.source_cpu and (cfg.version is GicVersion.V3 or lr.hw or not 0 <= lr.source_cpu <= 7):
            raise ArchUsageError(f"ICH_LR{n}.CPUID: only GICv2 software SGIs carry 0..7, got {lr}")
        value = ListRegister(
            vintid=lr.vintid, state=lr.state, priority=lr.priority & cfg.priority_mask,
            group=lr.group, hw=lr.hw, pintid=lr.pintid if lr.hw else 0,
            eoi=lr.eoi and not lr.hw, source_cpu=lr.source_cpu,
        )
        self.state.lrs[n] = value

    def write_hcr(self, hcr: IchHcr) -> None:
        """ICH_HCR_EL2 write: stores the bits this interface implements (EOIcount included)."""
        v3 = self.config.version is GicVersion.V3
        self.state.hcr = IchHcr(
            en=hcr.en, uie=hcr.uie, lrenpie=hcr.lrenpie, npie=hcr.npie,
            vgrp0eie=hcr.vgrp0eie, vgrp0die=hcr.vgrp0die,
            vgrp1eie=hcr.vgrp1eie, vgrp1die=hcr.vgrp1die,
            vsgieoicount=hcr.vsgieoicount and v3, tc=hcr.tc and v3, tall0=hcr.tall0 and v3,
            tall1=hcr.tall1 and v3, tsei=hcr.tsei and v3,
            tdir=hcr.tdir and v3 and self.config.tds, dvim=hcr.dvim and v3,
            eoicount=hcr.eoicount & 0x1F,
        )

    def write_vmcr(self, vmcr: IchVmcr) -> None:
        """ICH_VMCR_EL2 write: clamps the binary points, masks VPMR, forces RES0/RES1 bits."""
        cfg = self.config
        v3 = cfg.version is GicVersion.V3
        self.state.vmcr = IchVmcr(
            veng0=vmcr.veng0, veng1=vmcr.veng1,
            vackctl=vmcr.vackctl and not v3, vfiqen=vmcr.vfiqen or v3,
            vcbpr=vmcr.vcbpr, veoim=vmcr.veoim,
            vbpr0=max(vmcr.vbpr0 & 7, cfg.min_bpr0), vbpr1=max(vmcr.vbpr1 & 7, cfg.min_bpr1),
            vpmr=vmcr.vpmr & cfg.priority_mask,
        )

    # --- guest operations (section 4) ------------------------------------------------------

    def read_iar(self, group: int, *, trap_check: bool = True) -> int | Trap:
        """ICV_IAR0/1_EL1 read (GICv2: GICV_IAR / GICV_AIAR): acknowledge.

        Returns 1023 when nothing can be acknowledged in this group; otherwise
        the LR goes Pending -> Active and the group-priority bit is set in the APRs.
        """
        trap = self._trap(_IAR[group], False, None, trap_check)
        if trap:
            return trap
        st = self.state
        n = derived.hppvi(st)
        if n is None:
            return SPURIOUS
        lr = st.lrs[n]
        if lr.group != group or not derived.can_signal(self.config, st, lr):
            return SPURIOUS
        if is_special(lr.vintid):
            st.lrs[n] = lr.with_state(LRState.INVALID)
            return lr.vintid
        st.lrs[n] = lr.with_state(LRState.ACTIVE)
        index = (lr.priority & gprio_mask(st.vmcr, group)) >> (8 - self.config.pre_bits)
        bank = st.ap1r if group and self.config.version is GicVersion.V3 else st.ap0r
        bank[index // 32] |= 1 << (index % 32)
        return self._intid_value(lr)

    def write_eoir(self, group: int, value: int, *, trap_check: bool = True) -> Trap | None:
        """ICV_EOIR0/1_EL1 write: priority drop, then deactivation if EOImode is 0.

        An INTID with no active LR counts in EOIcount per section 5 (not for
        LPIs; EOImode 1 per switch 11.4; not for vSGIs with vSGIEOICount).
        """
        trap = self._trap(_EOIR[group], True, value, trap_check)
        if trap:
            return trap
        intid, source = self._split_value(value)
        if is_special(intid):
            return None
        dropped = self._drop_priority()
        if dropped is None and self.config.switches.eoir_without_apr == "ignore":
            return None
        n = self._find_active(intid, source)
        st = self.state
        if n is None:
            counts = intid < LPI_MIN and (
                not st.vmcr.veoim or self.config.switches.eoir_eoimode1_counts
            )
            if counts:
                self._bump_eoicount(intid)
            return None
        lr = st.lrs[n]
        if dropped is None or lr.group != group:
            return None  # nothing dropped, or the guest broke the ordering rules
        if (lr.priority & gprio_mask(st.vmcr, group)) != dropped:
            return None
        if not st.vmcr.veoim or is_lpi(intid):
            self._deactivate_lr(n)
        return None

    def write_dir(self, value: int, *, trap_check: bool = True) -> Trap | None:
        """ICV_DIR_EL1 write (GICv2: GICV_DIR): deactivate, when EOImode is 1.

        Only this interface's own LRs are searched: an INTID active in another
        vCPU's LR is not found here and merely counts in this vCPU's EOIcount.
        """
        trap = self._trap(IcvReg.DIR, True, value, trap_check)
        if trap:
            return trap
        intid, source = self._split_value(value)
        if intid >= SPECIAL_MIN or not self.state.vmcr.veoim:
            return None  # specials and LPIs are not valid here; EOImode 0 ignores DIR
        n = self._find_active(intid, source)
        if n is None:
            self._bump_eoicount(intid)
        else:
            self._deactivate_lr(n)
        return None

    def read_hppir(self, group: int, *, trap_check: bool = True) -> int | Trap:
        """ICV_HPPIR0/1_EL1 read: the highest-priority pending LR of this group, no masking."""
        trap = self._trap(_HPPIR[group], False, None, trap_check)
        if trap:
            return trap
        n = derived.hppvi(self.state)
        if n is None or self.state.lrs[n].group != group:
            return SPURIOUS
        return self._intid_value(self.state.lrs[n])

    def read_rpr(self, *, trap_check: bool = True) -> int | Trap:
        """ICV_RPR_EL1 read: the running priority (0xff when idle)."""
        trap = self._trap(IcvReg.RPR, False, None, trap_check)
        return trap or self.running_priority()

    def read_pmr(self, *, trap_check: bool = True) -> int | Trap:
        """ICV_PMR_EL1 read."""
        trap = self._trap(IcvReg.PMR, False, None, trap_check)
        return trap or self.state.vmcr.vpmr

    def write_pmr(self, value: int, *, trap_check: bool = True) -> Trap | None:
        """ICV_PMR_EL1 write: keeps the implemented priority bits."""
        trap = self._trap(IcvReg.PMR, True, value, trap_check)
        if trap:
            return trap
        self.state.vmcr.vpmr = value & self.config.priority_mask
        return None

    def read_bpr(self, group: int, *, trap_check: bool = True) -> int | Trap:
        """ICV_BPR0/1_EL1 read; BPR1 reads as BPR0 + 1 (saturated at 7) while VCBPR is set."""
        trap = self._trap(_BPR[group], False, None, trap_check)
        if trap:
            return trap
        vmcr = self.state.vmcr
        if group == 0:
            return vmcr.vbpr0
        return min(vmcr.vbpr0 + 1, 7) if vmcr.vcbpr else vmcr.vbpr1

    def write_bpr(self, group: int, value: int, *, trap_check: bool = True) -> Trap | None:
        """ICV_BPR0/1_EL1 write: clamped to the minimum; BPR1 ignored while VCBPR is set."""
        trap = self._trap(_BPR[group], True, value, trap_check)
        if trap:
            return trap
        vmcr = self.state.vmcr
        if group == 0:
            vmcr.vbpr0 = max(value & 7, self.config.min_bpr0)
        elif not vmcr.vcbpr:
            vmcr.vbpr1 = max(value & 7, self.config.min_bpr1)
        return None

    def read_ctlr(self, *, trap_check: bool = True) -> int | Trap:
        """ICV_CTLR_EL1 read (GICv2: GICV_CTLR, which also holds the group enables)."""
        trap = self._trap(IcvReg.CTLR, False, None, trap_check)
        if trap:
            return trap
        vmcr, cfg = self.state.vmcr, self.config
        if cfg.version is GicVersion.V2:
            return (int(vmcr.veng0) << _CTLR_V2_EN0 | int(vmcr.veng1) << _CTLR_V2_EN1
                    | int(vmcr.vackctl) << _CTLR_V2_ACKCTL | int(vmcr.vfiqen) << _CTLR_V2_FIQEN
                    | int(vmcr.vcbpr) << _CTLR_V2_CBPR | int(vmcr.veoim) << _CTLR_V2_EOIMODE)
        idbits = 1 if cfg.id_bits == 24 else 0
        return (int(vmcr.vcbpr) << _CTLR_V3_CBPR | int(vmcr.veoim) << _CTLR_V3_EOIMODE
                | (cfg.pri_bits - 1) << _CTLR_V3_PRIBITS_SHIFT | idbits << _CTLR_V3_IDBITS_SHIFT)

    def write_ctlr(self, value: int, *, trap_check: bool = True) -> Trap | None:
        """ICV_CTLR_EL1 write: only CBPR and EOImode are writable (GICv2 adds the enables)."""
        trap = self._trap(IcvReg.CTLR, True, value, trap_check)
        if trap:
            return trap
        vmcr = self.state.vmcr
        if self.config.version is GicVersion.V2:
            vmcr.veng0 = bool(value >> _CTLR_V2_EN0 & 1)
            vmcr.veng1 = bool(value >> _CTLR_V2_EN1 & 1)
            vmcr.vackctl = bool(value >> _CTLR_V2_ACKCTL & 1)
            vmcr.vfiqen = bool(value >> _CTLR_V2_FIQEN & 1)
            vmcr.vcbpr = bool(value >> _CTLR_V2_CBPR & 1)
            vmcr.veoim = bool(value >> _CTLR_V2_EOIMODE & 1)
        else:
            vmcr.vcbpr = bool(value >> _CTLR_V3_CBPR & 1)
            vmcr.veoim = bool(value >> _CTLR_V3_EOIMODE & 1)
        return None

    def read_igrpen(self, group: int, *, trap_check: bool = True) -> int | Trap:
        """ICV_IGRPEN0/1_EL1 read (GICv3 only)."""
        self._require_v3(_IGRPEN[group])
        trap = self._trap(_IGRPEN[group], False, None, trap_check)
        if trap:
            return trap
        return int(self.state.vmcr.veng1 if group else self.state.vmcr.veng0)

    def write_igrpen(self, group: int, value: int, *, trap_check: bool = True) -> Trap | None:
        """ICV_IGRPEN0/1_EL1 write: sets VENG0/VENG1 (which may raise a group MI)."""
        self._require_v3(_IGRPEN[group])
        trap = self._trap(_IGRPEN[group], True, value, trap_check)
        if trap:
            return trap
        if group:
            self.state.vmcr.veng1 = bool(value & 1)
        else:
            self.state.vmcr.veng0 = bool(value & 1)
        return None

    def read_apr(self, group: int, n: int, *, trap_check: bool = True) -> int | Trap:
        """ICV_AP0Rn/AP1Rn_EL1 read (GICv2: GICV_APR, group 0 only)."""
        trap = self._trap(_APR[group], False, None, trap_check, n)
        if trap:
            return trap
        return self._apr_bank(group, n)[n]

    def write_apr(self, group: int, n: int, value: int, *, trap_check: bool = True) -> Trap | None:
        """ICV_AP0Rn/AP1Rn_EL1 write: the guest restores its active priorities directly."""
        trap = self._trap(_APR[group], True, value, trap_check, n)
        if trap:
            return trap
        self._apr_bank(group, n)[n] = value & 0xFFFFFFFF
        return None

    def emulate(self, trap: Trap) -> int | None:
        """Perform a trapped access as the hardware would have, without the trap check.

        The hypervisor's software emulation (hyp/vgic-v3-sr.c:
        __vgic_v3_perform_cpuif_access); its readings of the section-11
        disagreements are whatever ``config.switches`` says. Returns the value of a read.
        """
        reg, v, n = trap.register, trap.value or 0, trap.index
        g = 0 if reg in (IcvReg.IAR0, IcvReg.EOIR0, IcvReg.HPPIR0, IcvReg.BPR0, IcvReg.AP0R,
                         IcvReg.IGRPEN0) else 1
        out: int | Trap | None
        if reg in (IcvReg.IAR0, IcvReg.IAR1):
            out = self.read_iar(g, trap_check=False)
        elif reg in (IcvReg.EOIR0, IcvReg.EOIR1):
            out = self.write_eoir(g, v, trap_check=False)
        elif reg in (IcvReg.HPPIR0, IcvReg.HPPIR1):
            out = self.read_hppir(g, trap_check=False)
        elif reg is IcvReg.DIR:
            out = self.write_dir(v, trap_check=False)
        elif reg is IcvReg.RPR:
            out = self.read_rpr(trap_check=False)
        elif reg in (IcvReg.BPR0, IcvReg.BPR1):
            out = (self.write_bpr(g, v, trap_check=False) if trap.write
                   else self.read_bpr(g, trap_check=False))
        elif reg in (IcvReg.AP0R, IcvReg.AP1R):
            out = (self.write_apr(g, n, v, trap_check=False) if trap.write
                   else self.read_apr(g, n, trap_check=False))
        elif reg in (IcvReg.IGRPEN0, IcvReg.IGRPEN1):
            out = (self.write_igrpen(g, v, trap_check=False) if trap.write
                   else self.read_igrpen(g, trap_check=False))
        elif reg is IcvReg.PMR:
            out = self.write_pmr(v, trap_check=False) if trap.write else self.read_pmr(
                trap_check=False)
        else:
            out = self.write_ctlr(v, trap_check=False) if trap.write else self.read_ctlr(
                trap_check=False)
        return out if isinstance(out, int) else None

    def find_active_lr(self, value: int) -> int | None:
        """The LR holding the INTID of an EOIR/DIR ``value`` with its active bit set, or None.

        What a hypervisor's in-LR deactivation fast path searches
        (hyp/vgic-v3-sr.c: __vgic_v3_find_active_lr).
        """
        intid, source = self._split_value(value)
        return self._find_active(intid, source)

    # --- helpers -----------------------------------------------------------------------------

    def _trap(
        self, reg: IcvReg, write: bool, value: int | None, check: bool, index: int = 0
    ) -> Trap | None:
        if not check:
            return None
        cause = trap_cause(self.config, self.state, reg)
        return Trap(reg, write, cause, value, index) if cause else None

    def _require_v3(self, reg: IcvReg) -> None:
        if self.config.version is GicVersion.V2:
            raise ArchUsageError(f"{reg.value}: GICv2 has no such register (use GICV_CTLR)")

    def _apr_bank(self, group: int, n: int) -> list[int]:
        """The APR words a guest access to ICV_AP<group>R<n> reaches (validated)."""
        st = self.state
        if self.config.version is GicVersion.V2:
            if group != 0 or n != 0:
                raise ArchUsageError(f"GICV_APR: GICv2 has one APR, got group {group} n {n}")
            return st.ap0r
        if not 0 <= n < self.config.nr_apr:
            raise ArchUsageError(
                f"ICV_AP{group}R{n}_EL1: expected n in 0..{self.config.nr_apr - 1}"
            )
        return st.ap1r if group else st.ap0r

    def _intid_value(self, lr: ListRegister) -> int:
        """The INTID as the guest reads it: GICv2 SGIs carry the source CPUID in [12:10]."""
        if self.config.version is GicVersion.V2 and lr.vintid <= SGI_MAX:
            return lr.vintid | lr.source_cpu << 10
        return lr.vintid

    def _split_value(self, value: int) -> tuple[int, int | None]:
        """(INTID, GICv2 SGI source CPUID or None) of an EOIR/DIR value."""
        if self.config.version is GicVersion.V2:
            intid = value & 0x3FF
            return intid, (value >> 10) & 7 if intid <= SGI_MAX else None
        # INTID field is [23:0] (QEMU reads value & 0xffffff); bits above ICH_VTR.IDbits are
        # RES0 for the guest, so a value beyond them names no LR and, being >= 8192, counts
        # as an LPI rather than aliasing to a low INTID.
        return value & 0xFFFFFF, None

    def _find_active(self, intid: int, source: int | None) -> int | None:
        """First LR with the active bit set holding ``intid`` (QEMU icv_find_active)."""
        for n, lr in enumerate(self.state.lrs):
            same_source = source is None or lr.source_cpu == source
            if lr.state.active and lr.vintid == intid and same_source:
                return n
        return None

    def _drop_priority(self) -> int | None:
        """Clear the highest active priority (lowest set APR bit); return it, or None if idle."""
        st, shift = self.state, 8 - self.config.pre_bits
        for i, (a0, a1) in enumerate(zip(st.ap0r, st.ap1r, strict=True)):
            if not (a0 | a1):
                continue
            b0 = lowest_set_bit(a0) if a0 else 32
            b1 = lowest_set_bit(a1) if a1 else 32
            if b0 < b1 or (b0 == b1 and self.config.switches.apr_drop_tie == "group0"):
                st.ap0r[i] &= ~(1 << b0)
                return (i * 32 + b0) << shift
            st.ap1r[i] &= ~(1 << b1)
            return (i * 32 + b1) << shift
        return None

    def _bump_eoicount(self, intid: int) -> None:
        """EOIcount += 1 (mod 32), except for vSGIs while ICH_HCR_EL2.vSGIEOICount is set."""
        hcr = self.state.hcr
        if hcr.vsgieoicount and intid <= SGI_MAX:
            return
        hcr.eoicount = (hcr.eoicount + 1) & 0x1F

    def _deactivate_lr(self, n: int) -> None:
        """Clear the active bit of LR n; HW=1 also deactivates pINTID (QEMU icv_deactivate_irq)."""
        lr = self.state.lrs[n]
        if lr.hw and lr.pintid < SPECIAL_MIN:
            self.on_physical_deactivate(lr.pintid)
        self.state.lrs[n] = lr.with_state(LRState(lr.state & ~LRState.ACTIVE))
