"""The mutable state of one virtual CPU interface: LRs, ICH_HCR, ICH_VMCR, APRs."""

from __future__ import annotations

from dataclasses import dataclass, field

from vgic_actors.arch.registers import EMPTY_LR, CpuIfConfig, IchHcr, IchVmcr, ListRegister


@dataclass(slots=True)
class CpuIfState:
    """Everything the hardware holds for one vCPU's virtual interface.

    ``ap0r``/``ap1r`` are the ICH_AP0R<n>_EL2 / ICH_AP1R<n>_EL2 words (the
    guest sees them as ICV_AP0Rn/ICV_AP1Rn). GICv2 has a single GICH_APR: the
    model keeps it in ``ap0r[0]`` and leaves ``ap1r`` zero.
    ``v2_dir_page_trapped`` is the GICv2 hypervisor's choice to leave the
    GICV_DIR page unmapped in stage 2 (KVM as merged: always; pre-series: never).
    """

    lrs: list[ListRegister]
    hcr: IchHcr = field(default_factory=IchHcr)
    vmcr: IchVmcr = field(default_factory=IchVmcr)
    ap0r: list[int] = field(default_factory=lambda: [0])
    ap1r: list[int] = field(default_factory=lambda: [0])
    v2_dir_page_trapped: bool = False

    @classmethod
    def reset(cls, config: CpuIfConfig) -> CpuIfState:
        """State after reset: every LR Invalid, HCR and VMCR zero, no active priority."""
        return cls(
            lrs=[EMPTY_LR] * config.nr_lr,
            ap0r=[0] * config.nr_apr,
            ap1r=[0] * config.nr_apr,
        )

    def copy(self) -> CpuIfState:
        """An independent copy (LRs are immutable values, so a shallow list copy suffices)."""
        return CpuIfState(
            lrs=list(self.lrs),
            hcr=IchHcr(**{k: getattr(self.hcr, k) for k in IchHcr.__slots__}),
            vmcr=IchVmcr(**{k: getattr(self.vmcr, k) for k in IchVmcr.__slots__}),
            ap0r=list(self.ap0r),
            ap1r=list(self.ap1r),
            v2_dir_page_trapped=self.v2_dir_page_trapped,
        )
