"""Small builders shared by the arch tests."""

from __future__ import annotations

from vgic_actors.arch import (
    ArchSwitches,
    CpuIfConfig,
    IchHcr,
    IchVmcr,
    ListRegister,
    LRState,
    VirtualCpuInterface,
)

P, A, PA, I = LRState.PENDING, LRState.ACTIVE, LRState.PENDING_ACTIVE, LRState.INVALID


def cpuif(
    *lrs: ListRegister,
    nr_lr: int = 4,
    eoimode: bool = False,
    hcr: IchHcr | None = None,
    vmcr: IchVmcr | None = None,
    switches: ArchSwitches | None = None,
    pre_bits: int = 5,
    pri_bits: int = 5,
    tds: bool = True,
    deactivated: list[int] | None = None,
) -> VirtualCpuInterface:
    """A GICv3 interface ready for a guest: En, both groups enabled, PMR open, given LRs."""
    cfg = CpuIfConfig(nr_lr=nr_lr, pre_bits=pre_bits, pri_bits=pri_bits, tds=tds,
                      switches=switches or ArchSwitches())
    sink = deactivated.append if deactivated is not None else None
    c = VirtualCpuInterface(cfg, on_physical_deactivate=sink)
    c.write_hcr(hcr or IchHcr(en=True))
    c.write_vmcr(vmcr or IchVmcr(veng0=True, veng1=True, vpmr=0xFF, veoim=eoimode))
    for n, lr in enumerate(lrs):
        c.write_lr(n, lr)
    return c


def lr(
    vintid: int, state: LRState = P, prio: int = 0xA0, group: int = 1, **kw: object
) -> ListRegister:
    """An LR with the common fields spelled short."""
    return ListRegister(vintid=vintid, state=state, priority=prio, group=group, **kw)  # type: ignore[arg-type]
