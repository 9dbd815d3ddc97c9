"""`vgic-actors selfcheck`: exercise the architectural model on the problem this tool is about.

Two GICv3 virtual CPU interfaces play the asymmetric SPI deactivation of
peer-tests.md A5 at the hardware level: vCPU0 acknowledges SPI 32 with
EOImode 1 and drops its priority; vCPU1 writes ICV_DIR_EL1 for it. Without
ICH_HCR_EL2.TDIR the write runs in vCPU1's hardware, finds no LR, and only
bumps vCPU1's EOIcount, so SPI 32 stays Active in vCPU0's LR. With TDIR set
the write traps to the hypervisor, which is what KVM's active_spis broadcast
arranges on every vCPU.
"""

from __future__ import annotations

from dataclasses import dataclass

from vgic_actors.arch import (
    SPURIOUS,
    CpuIfConfig,
    IchHcr,
    IchVmcr,
    IcvReg,
    ListRegister,
    LRState,
    Trap,
    TrapCause,
    VirtualCpuInterface,
)

SPI = 32
_CTLR_EOIMODE = 1 << 1


@dataclass(frozen=True)
class Check:
    """One expectation of the self-check and whether the model met it."""

    what: str
    ok: bool
    detail: str


def _guest_ready_vcpu(tdir: bool) -> VirtualCpuInterface:
    """A vCPU interface as KVM leaves it on entry: En, Group 1 enabled, PMR open, EOImode 1."""
    cpuif = VirtualCpuInterface(CpuIfConfig(nr_lr=4))
    cpuif.write_hcr(IchHcr(en=True, tdir=tdir))
    cpuif.write_vmcr(IchVmcr(veng1=True, vpmr=0xFF))
    cpuif.write_ctlr(_CTLR_EOIMODE)
    return cpuif


def _asymmetric_dir(tdir: bool) -> tuple[VirtualCpuInterface, VirtualCpuInterface, object]:
    vcpu0, vcpu1 = _guest_ready_vcpu(tdir), _guest_ready_vcpu(tdir)
    vcpu0.write_lr(0, ListRegister(vintid=SPI, state=LRState.PENDING, priority=0xA0))
    acked = vcpu0.read_iar(1)
    if acked != SPI:
        raise AssertionError(f"vCPU0 acknowledged {acked!r}, expected {SPI}")
    vcpu0.write_eoir(1, SPI)
    return vcpu0, vcpu1, vcpu1.write_dir(SPI)


def run_checks() -> list[Check]:
    """Run the self-check scenarios and return what each one showed."""
    checks: list[Check] = []
    vcpu0, vcpu1, outcome = _asymmetric_dir(tdir=False)
    checks.append(Check(
        "TDIR clear: vCPU1's DIR runs in hardware and misses",
        outcome is None and vcpu0.state.lrs[0].state is LRState.ACTIVE
        and vcpu1.state.hcr.eoicount == 1,
        f"vCPU0 LR0={vcpu0.state.lrs[0].state.name}, vCPU1 EOIcount={vcpu1.state.hcr.eoicount}"
        " (lost deactivation)",
    ))
    vcpu0, vcpu1, outcome = _asymmetric_dir(tdir=True)
    trapped = isinstance(outcome, Trap) and outcome.register is IcvReg.DIR
    checks.append(Check(
        "TDIR set: vCPU1's DIR traps to the hypervisor",
        trapped and isinstance(outcome, Trap) and outcome.cause is TrapCause.TDIR
        and vcpu1.state.hcr.eoicount == 0,
        f"outcome={outcome!r}",
    ))
    fixed = vcpu0.write_dir(SPI, trap_check=False)
    checks.append(Check(
        "the hypervisor's emulated DIR on the owner deactivates the LR",
        fixed is None and vcpu0.state.lrs[0].state is LRState.INVALID,
        f"vCPU0 LR0={vcpu0.state.lrs[0].state.name}",
    ))
    spurious = _guest_ready_vcpu(tdir=False).read_iar(1)
    checks.append(Check("IAR with no pending LR is spurious", spurious == SPURIOUS,
                        f"IAR1={spurious!r}"))
    return checks


def render(checks: list[Check]) -> str:
    """Human-readable report, one line per check, then a verdict."""
    lines = ["vgic-actors self-check: asymmetric SPI deactivation on the virtual CPU interface"]
    for c in checks:
        lines.append(f"  [{'ok' if c.ok else 'FAIL'}] {c.what}: {c.detail}")
    passed = sum(c.ok for c in checks)
    lines.append(f"{passed} passed, {len(checks) - passed} failed")
    return "\n".join(lines)
