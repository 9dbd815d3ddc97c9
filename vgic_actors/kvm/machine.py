"""Start a VM on the runtime: one actor per pCPU running its vCPU, one distributor actor."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from vgic_actors.kvm.distributor import distributor_handler
from vgic_actors.kvm.guest_api import GuestCpu, GuestEnv
from vgic_actors.kvm.run_loop import VcpuRunLoop
from vgic_actors.kvm.vm import Kvm, KvmVcpu, VmConfig, build_kvm
from vgic_actors.runtime import (
    Mailbox,
    RunLoopConfig,
    Scheduler,
    kvm_arch_vcpu_ioctl_run,
    serve,
)


@dataclass(eq=False)
class Machine:
    """A running VM: the kernel state, the guests and their shared memory."""

    kvm: Kvm
    guests: Sequence[GuestCpu]
    memory: dict[str, int] = field(default_factory=dict)


def start_vm(sched: Scheduler, config: VmConfig, guests: Sequence[GuestCpu]) -> Machine:
    """Spawn the VM's actors on ``sched``: ``pcpuN`` runs vCPU N's KVM_RUN loop, and
    ``distributor`` serves GICD accesses. ``guests[n]`` is vCPU n's program."""
    if len(guests) != config.nr_vcpus:
        raise ValueError(f"{config.nr_vcpus} vCPUs but {len(guests)} guest programs")
    kvm = build_kvm(sched, config)
    machine = Machine(kvm, guests)
    mailbox = Mailbox(sched, "distributor")
    loop_config = RunLoopConfig(timeslice=config.timeslice,
                                recheck_requests=not kvm.sw.mutant_no_request_recheck)
    for vcpu, guest in zip(kvm.vcpus, guests, strict=True):
        env = GuestEnv(vcpu.vcpu_id, vcpu.cpuif, machine.memory)
        hooks = VcpuRunLoop(kvm, vcpu, guest, env, mailbox)

        async def ioctl_run(vcpu: KvmVcpu = vcpu, hooks: VcpuRunLoop = hooks) -> None:
            await kvm_arch_vcpu_ioctl_run(vcpu.core, hooks, loop_config)

        sched.spawn(f"pcpu{vcpu.vcpu_id}", ioctl_run, cpu=vcpu.vcpu_id)
    handler = distributor_handler(kvm)

    async def distributor() -> None:
        await serve(mailbox, handler)

    sched.spawn("distributor", distributor)
    return machine
