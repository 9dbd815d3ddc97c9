"""The actor runtime: a controlled, replayable scheduler on Trio, knowing nothing of GICs.

Public names for the kernel layer: interleaving points, cells, locks, mailboxes,
waits, kicks, the pCPU run-loop shell, strategies and the run entry points.
"""

from vgic_actors.runtime.cells import (
    EXITING_GUEST_MODE,
    IN_GUEST_MODE,
    KVM_REQUEST_MASK,
    OUTSIDE_GUEST_MODE,
    AtomicInt,
    Mode,
    VcpuMode,
    VcpuRequests,
)
from vgic_actors.runtime.choices import ChoiceLog, ReplayReport
from vgic_actors.runtime.eventlog import Emitter, configure_event_log
from vgic_actors.runtime.findings import ActorSnapshot, Finding, Outcome, RunResult, RunStatistics
from vgic_actors.runtime.kick import (
    KVM_REQUEST_NO_ACTION,
    KVM_REQUEST_NO_WAKEUP,
    KVM_REQUEST_WAIT,
    Pcpu,
    VcpuCore,
    kvm_make_all_cpus_request,
    kvm_make_vcpu_request,
    kvm_vcpu_exiting_guest_mode,
    kvm_vcpu_kick,
    smp_send_reschedule,
)
from vgic_actors.runtime.locks import SpinLock
from vgic_actors.runtime.messages import Mailbox, ReplySlot, reply, serve
from vgic_actors.runtime.pcpu import (
    ExitReason,
    GuestExit,
    RunLoopConfig,
    RunLoopHooks,
    kvm_arch_vcpu_ioctl_run,
    run_guest_slice,
)
from vgic_actors.runtime.runner import Setup, arun, run
from vgic_actors.runtime.scheduler import (
    Actor,
    ActorState,
    Message,
    Scheduler,
    Timer,
    current_actor,
    current_scheduler,
    point,
    spin_yield,
)
from vgic_actors.runtime.strategies import (
    PCT,
    HypothesisSource,
    RandomWalk,
    Replay,
    Schedulable,
    Strategy,
    TrioLike,
    make_strategy,
)
from vgic_actors.runtime.waits import WaitQueue, sleep

__all__ = [
    "EXITING_GUEST_MODE",
    "IN_GUEST_MODE",
    "KVM_REQUEST_MASK",
    "KVM_REQUEST_NO_ACTION",
    "KVM_REQUEST_NO_WAKEUP",
    "KVM_REQUEST_WAIT",
    "OUTSIDE_GUEST_MODE",
    "PCT",
    "Actor",
    "ActorSnapshot",
    "ActorState",
    "AtomicInt",
    "ChoiceLog",
    "Emitter",
    "ExitReason",
    "Finding",
    "GuestExit",
    "HypothesisSource",
    "Mailbox",
    "Message",
    "Mode",
    "Outcome",
    "Pcpu",
    "RandomWalk",
    "Replay",
    "ReplayReport",
    "ReplySlot",
    "RunLoopConfig",
    "RunLoopHooks",
    "RunResult",
    "RunStatistics",
    "Schedulable",
    "Scheduler",
    "Setup",
    "SpinLock",
    "Strategy",
    "Timer",
    "TrioLike",
    "VcpuCore",
    "VcpuMode",
    "VcpuRequests",
    "WaitQueue",
    "arun",
    "configure_event_log",
    "current_actor",
    "current_scheduler",
    "kvm_arch_vcpu_ioctl_run",
    "kvm_make_all_cpus_request",
    "kvm_make_vcpu_request",
    "kvm_vcpu_exiting_guest_mode",
    "kvm_vcpu_kick",
    "make_strategy",
    "point",
    "reply",
    "run",
    "run_guest_slice",
    "serve",
    "sleep",
    "smp_send_reschedule",
    "spin_yield",
]
