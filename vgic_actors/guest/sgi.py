"""Guest SGI generation: one instruction sends one SGI to a set of vCPUs.

GICv3: a write to ICC_SGI1R_EL1, which always traps to EL2 (``SgiTrap``); KVM generates
the SGIs in the sender's thread (vgic_v3_dispatch_sgi). GICv2: a write to GICD_SGIR, an
MMIO exit served by the distributor (vgic_mmio_write_sgir); the targets record the sender.
"""

from __future__ import annotations

from dataclasses import dataclass

from vgic_actors.arch.registers import GicVersion
from vgic_actors.arch.sgi import Sgi1r, SgiRegister, SgiTrap
from vgic_actors.guest.program import GuestOp, GuestProgram, StepResult
from vgic_actors.kvm.guest_api import GuestEnv, MmioAccess
from vgic_actors.runtime import ExitReason, GuestExit

_SGIR_FILTER_LIST, _SGIR_FILTER_OTHERS = 0, 1


@dataclass(frozen=True, slots=True)
class SendSgi(GuestOp):
    """Send SGI ``intid`` to the vCPUs in ``targets``, or with ``irm`` to every vCPU but self.

    GICv3: ICC_SGI1R_EL1 with IRM, or with Aff3.Aff2.Aff1 of the targets' cluster and one
    TargetList bit per target (vCPU n has MPIDR Aff0 = n % 16, Aff1 = n // 16: targets
    must share a cluster, as one register write can only name one). GICv2: GICD_SGIR with
    TargetListFilter 1 (all but self) for ``irm``, else 0 with CPUTargetList = ``targets``
    (vCPUs 0..7). A self-IPI names the sender in ``targets``.
    """

    intid: int
    targets: tuple[int, ...] = ()
    irm: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.intid <= 15:
            raise ValueError(f"SendSgi.intid: expected 0..15, got {self.intid}")
        if any(t < 0 for t in self.targets):
            raise ValueError(f"SendSgi.targets: expected vCPU numbers >= 0, got {self.targets}")
        if len({t >> 4 for t in self.targets}) > 1:
            raise ValueError(f"SendSgi.targets: one write names one 16-vCPU cluster, got "
                             f"{self.targets}")

    def execute(self, prog: GuestProgram, env: GuestEnv) -> StepResult:
        if env.cpuif.config.version is GicVersion.V2:
            if self.irm:
                value = _SGIR_FILTER_OTHERS << 24 | self.intid
            else:
                mask = sum(1 << t for t in set(self.targets) if t < 8)
                value = _SGIR_FILTER_LIST << 24 | mask << 16 | self.intid
            return GuestExit(ExitReason.TRAP,
                             MmioAccess(env.vcpu_id, "SGIR", self.intid, True, value))
        cluster = self.targets[0] >> 4 if self.targets else 0
        reg = Sgi1r(intid=self.intid, target_list=sum(1 << (t & 0xF) for t in set(self.targets)),
                    aff1=cluster & 0xFF, aff2=(cluster >> 8) & 0xFF, irm=self.irm)
        return GuestExit(ExitReason.TRAP, SgiTrap(SgiRegister.SGI1R, reg.encode()))
