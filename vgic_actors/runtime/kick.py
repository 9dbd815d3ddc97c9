"""Requests and kicks between vCPUs (kernel-vgic.md section 8.2), IPIs as messages.

`VcpuCore` is the part of struct kvm_vcpu the runtime owns: mode, requests, the
rcuwait, and the physical CPU it runs on. A reschedule IPI is a message to the
target pCPU's IPI mailbox; the guest on that pCPU notices it only once delivered.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from vgic_actors.events import IpisHandled, KickSent
from vgic_actors.runtime.cells import (
    IN_GUEST_MODE,
    KVM_REQUEST_MASK,
    OUTSIDE_GUEST_MODE,
    REQUEST_NAMES,
    Mode,
    VcpuMode,
    VcpuRequests,
)
from vgic_actors.runtime.context import (
    get_cpu,
    put_cpu,
    report_context,
    smp_call_function_many_checks,
)
from vgic_actors.runtime.messages import Mailbox
from vgic_actors.runtime.scheduler import Actor, Message, Scheduler, current_actor
from vgic_actors.runtime.waits import WaitQueue

KVM_REQUEST_NO_WAKEUP = 1 << 8
"""kvm_host.h: do not wake a blocked vCPU for this request."""
KVM_REQUEST_WAIT = 1 << 9
"""kvm_host.h: wait until the IPIs were handled (smp_call_function_many(wait=true))."""
KVM_REQUEST_NO_ACTION = 1 << 10
"""kvm_host.h: do not set the request bit (kick only)."""


class Pcpu:
    """A physical CPU: its id, the mailbox its IPIs land in, and its IRQ mask.

    An IPI is *handled* (its WAIT acknowledgement given) only where the CPU runs
    with IRQs enabled: right away if they are enabled when it is delivered, else
    when the region that disabled them ends (`local_irq_enable` / `local_irq_restore`
    in context.py, on the actor bound to this CPU). The run loop keeps IRQs disabled
    from flush to sync (so a guest sees a delivered IPI only as a pending exit). A CPU
    nobody is bound to starts with IRQs disabled: a model that never runs the shell
    enables them itself. `ipi_latency` bounds delivery in virtual time (None: unbounded).
    """

    def __init__(self, sched: Scheduler, cpu: int, ipi_latency: int | None = None) -> None:
        self.cpu = cpu
        self.ipi = Mailbox(sched, f"cpu{cpu}.ipi")
        self.ipi_latency = ipi_latency
        self.irqs_disabled = True

    def bind(self, actor: Actor) -> None:
        """`actor` runs on this CPU from now: its context drives the IRQ mask."""
        actor.ctx.pcpu = self
        self.irqs_disabled = bool(actor.ctx.irqs or actor.ctx.hardirq)
        if not self.irqs_disabled:
            self.take_pending_ipis(actor)

    def local_irq_disable(self) -> None:
        """PSTATE.I = 1 on an unbound CPU: IPIs stay pending in the mailbox."""
        self.irqs_disabled = True

    def local_irq_enable(self) -> list[Message]:
        """PSTATE.I = 0 on an unbound CPU: handle every pending IPI now; IPIs delivered
        later are handled at delivery until IRQs are disabled again."""
        self.irqs_disabled = False
        return self.handle_ipis()

    def handle_ipis(self) -> list[Message]:
        """Take the delivered IPIs and run their handlers (the WAIT acknowledgements)."""
        taken = self.ipi.drain()
        for msg in taken:
            if callable(msg.payload):
                msg.payload()
        return taken

    def take_pending_ipis(self, actor: Actor) -> None:
        """IRQs were just enabled on this CPU by `actor`: handle what pended, and log it."""
        taken = self.handle_ipis()
        sched = actor.sched
        if taken and sched.em.on:
            sched.em.emit(IpisHandled(step=sched.step, vt=sched.vt, actor=actor.name,
                                      cpu=self.cpu, count=len(taken)))

    def _delivered(self, _msg: Message) -> None:
        if not self.irqs_disabled:
            self.handle_ipis()


class VcpuCore:
    """kvm_vcpu's mode, requests, wait and cpu: what kicks and the run loop share."""

    def __init__(self, vcpu_id: int, pcpu: Pcpu | None = None) -> None:
        self.vcpu_id = vcpu_id
        self.mode = VcpuMode(vcpu_id)
        self.requests = VcpuRequests(vcpu_id)
        self.wait = WaitQueue(f"vcpu{vcpu_id}.wait", vcpu_id)
        self.pcpu = pcpu


def _emit_kick(actor: Actor, vcpu: VcpuCore, how: str, req: int) -> None:
    sched = actor.sched
    if sched.em.on:
        sched.em.emit(
            KickSent(step=sched.step, vt=sched.vt, actor=actor.name, vcpu=vcpu.vcpu_id,
                     how=how, req=req,
                     req_name=REQUEST_NAMES.get(req & KVM_REQUEST_MASK, "") if req >= 0 else "")
        )


def smp_send_reschedule(
    actor: Actor, pcpu: Pcpu, *, on_handled: Callable[[], None] | None = None
) -> Message:
    """arch/arm64 smp.c: smp_send_reschedule: an IPI in flight to `pcpu` (no point).

    `on_handled` runs when the target CPU handles the IPI with IRQs enabled
    (smp_call_function_many's completion for WAIT requests).
    """
    return pcpu.ipi.post(
        on_handled, kind="ipi", src=actor.name, on_delivered=pcpu._delivered,
        latency=pcpu.ipi_latency,
    )


async def kvm_vcpu_exiting_guest_mode(vcpu: VcpuCore) -> Mode:
    """kvm_host.h: kvm_vcpu_exiting_guest_mode: cmpxchg IN_GUEST -> EXITING, old mode."""
    return await vcpu.mode.cmpxchg(IN_GUEST_MODE, Mode.EXITING_GUEST_MODE)


async def kvm_vcpu_kick(vcpu: VcpuCore) -> None:
    """kvm_main.c: kvm_vcpu_kick: wake it if blocked, else IPI it if it was in guest mode.

    No IPI to the caller's own pCPU (the cmpxchg to EXITING_GUEST_MODE suffices).
    """
    actor = current_actor()
    if await vcpu.wait.kvm_vcpu_wake_up():
        _emit_kick(actor, vcpu, "wake", -1)
        return
    me = get_cpu("kvm_vcpu_kick")
    # arm.c: kvm_arch_vcpu_should_kick
    should_kick = await kvm_vcpu_exiting_guest_mode(vcpu) == IN_GUEST_MODE
    if should_kick and vcpu.pcpu is not None and vcpu.pcpu.cpu != me:
        smp_send_reschedule(actor, vcpu.pcpu)
        _emit_kick(actor, vcpu, "ipi", -1)
    else:
        _emit_kick(actor, vcpu, "none", -1)
    put_cpu("kvm_vcpu_kick")


def _kvm_request_needs_ipi(mode: Mode, req: int) -> bool:
    """kvm_main.c: kvm_request_needs_ipi, given the mode the cmpxchg found."""
    if req & KVM_REQUEST_WAIT:
        return mode != OUTSIDE_GUEST_MODE
    return mode == IN_GUEST_MODE


async def kvm_make_vcpu_request(vcpu: VcpuCore, req: int, me: int | None) -> Pcpu | None:
    """kvm_main.c: kvm_make_vcpu_request: set the bit, wake, or say which pCPU to IPI."""
    if not req & KVM_REQUEST_NO_ACTION:
        await vcpu.requests.kvm_make_request(req)
    if not req & KVM_REQUEST_NO_WAKEUP and await vcpu.wait.kvm_vcpu_wake_up():
        _emit_kick(current_actor(), vcpu, "wake", req & KVM_REQUEST_MASK)
        return None
    mode = await kvm_vcpu_exiting_guest_mode(vcpu)
    if _kvm_request_needs_ipi(mode, req) and vcpu.pcpu is not None and vcpu.pcpu.cpu != me:
        return vcpu.pcpu
    _emit_kick(current_actor(), vcpu, "none", req & KVM_REQUEST_MASK)
    return None


async def kvm_make_all_cpus_request(vcpus: Sequence[VcpuCore], req: int) -> bool:
    """kvm_main.c: kvm_make_all_cpus_request: every vCPU gets the bit; IPIs as messages.

    Runs between get_cpu() and put_cpu(): the loop over the vCPUs and the one batch of
    IPIs (kvm_kick_many_cpus -> smp_call_function_many) are a preemption-off region, so
    the stall budget bounds how far other CPUs get between two legs. Blocked vCPUs are
    woken (unless NO_WAKEUP); those the cmpxchg finds in guest mode get one IPI message
    each. Only a WAIT request blocks until every IPI is handled by its CPU
    (smp_call_function_many with wait, still with preemption off). Returns True if any
    IPI was sent.
    """
    actor = current_actor()
    me = get_cpu("kvm_make_all_cpus_request")
    sched = actor.sched
    # this_cpu_cpumask_var_ptr(cpu_kick_mask): per-CPU data, safe from preemption (get_cpu)
    # but not from an interrupt on the same CPU that broadcasts too
    if me is not None:
        if me in sched.percpu_in_use.setdefault("cpu_kick_mask", set()):
            report_context("percpu-reentered",
                           f"kvm_make_all_cpus_request on CPU {me} while another one on the "
                           "same CPU is using this_cpu cpu_kick_mask (an interrupt re-entered "
                           "it)")
        sched.percpu_in_use["cpu_kick_mask"].add(me)
    targets: list[tuple[VcpuCore, Pcpu]] = []
    for vcpu in vcpus:
        pcpu = await kvm_make_vcpu_request(vcpu, req, me)
        if pcpu is not None:
            targets.append((vcpu, pcpu))
    if not targets:
        _kick_mask_done(sched, me)
        put_cpu("kvm_make_all_cpus_request")
        return False
    outstanding = len(targets)

    def acked() -> None:
        nonlocal outstanding
        outstanding -= 1
        if outstanding == 0:
            sched.wake(actor)

    wait = bool(req & KVM_REQUEST_WAIT)
    smp_call_function_many_checks("kvm_make_all_cpus_request")  # kvm_kick_many_cpus
    for vcpu, pcpu in targets:
        smp_send_reschedule(actor, pcpu, on_handled=acked if wait else None)
        _emit_kick(actor, vcpu, "ipi", req & KVM_REQUEST_MASK)
    while wait and outstanding:
        await sched.block(actor, "smp_call_function_many")
    _kick_mask_done(sched, me)
    put_cpu("kvm_make_all_cpus_request")
    return True


def _kick_mask_done(sched: Scheduler, me: int | None) -> None:
    if me is not None:
        sched.percpu_in_use["cpu_kick_mask"].discard(me)
