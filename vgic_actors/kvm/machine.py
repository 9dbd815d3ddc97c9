"""Start a VM on the runtime: one actor per pCPU running its vCPU, one distributor actor."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from vgic_actors.kvm.distributor import distributor_handler
from vgic_actors.kvm.guest_api import GuestCpu, GuestEnv
from vgic_actors.kvm.host_irq import host_irq_handler
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
    distributor: Mailbox | None = None  # the distributor actor's mailbox (VMM ioctls go here)
    host: Sequence[HostActor] = ()


class HostActor(Protocol):
    """A VMM thread or device model (guest/host.py ``HostProgram``): an actor of its own."""

    @property
    def name(self) -> str:
        """The actor's name."""
        ...

    async def run(self, machine: Machine) -> None:
        """The actor's body."""
        ...


def start_vm(sched: Scheduler, config: VmConfig, guests: Sequence[GuestCpu],
             host: Sequence[HostActor] = ()) -> Machine:
    """Spawn the VM's actors on ``sched``: ``pcpuN`` runs vCPU N's KVM_RUN loop,
    ``distributor`` serves GICD accesses and VMM ioctls, then one actor per ``host``
    entry (VMM threads, devices). ``guests[n]`` is vCPU n's program. The ``hostirq``
    actor (host_irq.py) is spawned when a forwarded physical interrupt first fires."""
    if len(guests) != config.nr_vcpus:
        raise ValueError(f"{config.nr_vcpus} vCPUs but {len(guests)} guest programs")
    kvm = build_kvm(sched, config)
    machine = Machine(kvm, guests, kvm.guest_memory)  # guest RAM, shared with KVM
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
    machine.distributor = mailbox
    machine.host = host
    for actor in host:

        async def run_host(actor: HostActor = actor) -> None:
            await actor.run(machine)

        sched.spawn(actor.name, run_host)
    _attach_host_irq(sched, kvm)
    return machine


def _attach_host_irq(sched: Scheduler, kvm: Kvm) -> None:
    """Give the physical GIC its host-interrupt mailbox; spawn the actor serving it on
    the first physical interrupt (so VMs without HW interrupts have no extra actor)."""
    irq_mailbox = Mailbox(sched, "hostirq")
    handler = host_irq_handler(kvm)
    started = False

    async def hostirq() -> None:
        await serve(irq_mailbox, handler)

    def start() -> None:
        nonlocal started
        if not started:
            started = True
            sched.spawn("hostirq", hostirq)

    kvm.phys.attach(irq_mailbox, start)
