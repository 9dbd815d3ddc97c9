"""The one event schema: frozen msgspec Structs in a tagged union, one JSON line each.

Every layer reports what happened through these Structs (the runtime here; the
kernel layer adds its own classes below and to `AnyEvent`). The same objects feed
the JSON-lines log, the invariant checkers and, later, the log inspector. Names
state facts in the past tense; fields use the kernel's names. Event Structs do not
forbid unknown fields, and a field added later gets a default, so an older reader
still reads a newer log. Depends on msgspec only: any layer may import it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import msgspec


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="ev", tag=True):
    """Base of every event: the scheduler step, the virtual time and the acting actor."""

    step: int
    vt: int
    actor: str


# --- run framing -----------------------------------------------------------------------


class RunStarted(Event, frozen=True):
    """The header line of a run: what determines it (tool version, seed, strategy, ...)."""

    tool_version: str
    seed: int
    strategy: str
    scenario: str = ""
    variant: str = ""
    digest: str = ""
    """The scenario file's digest (``vgic-actors run`` checks it on replay)."""
    choices: str = ""
    """The choice log written beside this log (``FILE.choices.json``), by file name."""


class RunEnded(Event, frozen=True):
    """The run ended: quiescent, deadlock, or budget exhausted (see `Outcome`)."""

    outcome: str
    choices: int = 0


class FindingReported(Event, frozen=True):
    """The runtime found a deadlock or a livelock (budget spent while work was pending)."""

    kind: str
    message: str


# --- scheduling ------------------------------------------------------------------------


class ActorStepped(Event, frozen=True):
    """The scheduler let `actor` continue from its interleaving point `label`."""

    label: str
    choice: int = 0
    of: int = 1


class ActorBlocked(Event, frozen=True):
    """`actor` cannot continue until something wakes it (idle: it waits for new work)."""

    on: str
    idle: bool = False


class ActorFinished(Event, frozen=True):
    """`actor`'s task returned."""


class MessageSent(Event, frozen=True):
    """A message left `actor` and is in flight until the scheduler delivers it."""

    msg: int
    kind: str
    dst: str


class MessageDelivered(Event, frozen=True):
    """The scheduler delivered message `msg` (sent by `src`) into `dst`'s mailbox."""

    msg: int
    kind: str
    src: str
    dst: str


class TimerFired(Event, frozen=True):
    """A virtual timer expired and its callback ran."""

    timer: str


# --- shared memory, locks --------------------------------------------------------------


class CellAccessed(Event, frozen=True):
    """An access to an unlocked shared variable (atomic_t and the like)."""

    cell: str
    op: str
    old: int
    new: int


class LockAcquired(Event, frozen=True):
    """A model spinlock was taken (contended: the actor had to wait for it)."""

    lock: str
    contended: bool = False


class LockReleased(Event, frozen=True):
    """A model spinlock was dropped (handed to `to` when a waiter was queued)."""

    lock: str
    to: str = ""


# --- vCPU protocol: requests, mode, kicks, the run loop --------------------------------


class RequestMade(Event, frozen=True):
    """kvm_make_request: a bit was set in vcpu->requests (`req`, the low byte; `req_name`
    its kvm_host.h name, "" for a number the model does not name or an older log)."""

    vcpu: int
    req: int
    req_name: str = ""


class RequestChecked(Event, frozen=True):
    """kvm_check_request: the bit was tested and cleared (found: it was set); `req_name`
    as in RequestMade."""

    vcpu: int
    req: int
    found: bool
    req_name: str = ""


class ModeChanged(Event, frozen=True):
    """vcpu->mode changed (op: store, store_mb or cmpxchg)."""

    vcpu: int
    old: int
    new: int
    op: str


class VcpuWoken(Event, frozen=True):
    """kvm_vcpu_wake_up found `vcpu` blocked (WFI/halt) and woke it."""

    vcpu: int


class KickSent(Event, frozen=True):
    """kvm_vcpu_kick or one leg of kvm_make_all_cpus_request decided how to reach `vcpu`.

    how: "wake" (was blocked), "ipi" (was in guest mode), "none" (nothing to do).
    req: the request of a kvm_make_all_cpus_request leg (-1: a plain kick), `req_name`
    its name as in RequestMade.
    """

    vcpu: int
    how: str
    req: int = -1
    req_name: str = ""


class GuestEntered(Event, frozen=True):
    """The vCPU entered the guest (mode IN_GUEST_MODE, no request pending)."""

    vcpu: int


class EntryAborted(Event, frozen=True):
    """A request was pending after smp_store_mb(mode, IN_GUEST_MODE): entry abandoned."""

    vcpu: int


class GuestExited(Event, frozen=True):
    """A guest slice ended (reason: ipi, maintenance, trap, wfi, timeslice, halt)."""

    vcpu: int
    reason: str
    instructions: int = 0


class IpisHandled(Event, frozen=True):
    """With IRQs briefly enabled after an exit, the pCPU took its pending IPIs."""

    cpu: int
    count: int


# --- the kernel model (vgic_actors.kvm) ---------------------------------------------------


class IrqQueued(Event, frozen=True):
    """vgic_queue_irq_unlock put `intid` on `vcpu`'s ap_list; `bcst`: the 0 -> 1 broadcast."""

    intid: int
    vcpu: int
    bcst: bool = False


class HcrConfigured(Event, frozen=True):
    """vgic_flush_lr_state: `used_lrs` LRs populated and the shadow ICH_HCR_EL2 computed."""

    vcpu: int
    used_lrs: int
    lrs: list[int]
    tdir: bool
    npie: bool = False
    lrenpie: bool = False
    uie: bool = False
    active_spis: int = 0
    vgrp0eie: bool = False  # group-enable maintenance interrupts (vgic_v3_configure_hcr)
    vgrp0die: bool = False
    vgrp1eie: bool = False
    vgrp1die: bool = False


class LrFolded(Event, frozen=True):
    """vgic_v3_fold_lr folded `intid` (a real LR, or a pseudo-LR: `pseudo`)."""

    vcpu: int
    intid: int
    state: str
    deactivated: bool
    pseudo: bool = False


class EoicountReplayed(Event, frozen=True):
    """vgic_v3_fold_lr_state: one unit of EOIcount deactivated `intid` outside the LRs."""

    vcpu: int
    intid: int
    walk_start: int


class DirEmulated(Event, frozen=True):
    """vgic_v3_deactivate ran for a trapped DIR by `vcpu`; `outcome` says which branch:
    ignored (EOImode 0 / out of range), not-queued, icactiver (on an LR), pseudo-lr,
    cpuid-mismatch, v1-inactive. Or the hyp handled it without an exit
    (__vgic_v3_perform_cpuif_access): hyp-lr (cleared in this vCPU's LR), hyp-eoicount
    (counted), hyp-nop (EOImode 0, LPI). `owner` is the vCPU asked to prune (-1: none)."""

    vcpu: int
    intid: int
    outcome: str
    owner: int = -1


class ActiveChanged(Event, frozen=True):
    """vgic_mmio_change_active set KVM's active copy of `intid` (halting the guest if `halted`)."""

    intid: int
    active: bool
    halted: bool


class IrqPruned(Event, frozen=True):
    """vgic_prune_ap_list took `intid` off `vcpu`'s ap_list: dropped (`to` -1: it goes
    nowhere) or migrated to vCPU `to`'s ap_list."""

    vcpu: int
    intid: int
    to: int = -1


# --- the guest's CPU interface (vgic_actors.guest) ----------------------------------------


class GuestAcked(Event, frozen=True):
    """vCPU `vcpu`'s IAR returned `intid`: Active for the guest from now on."""

    vcpu: int
    intid: int


class GuestEoied(Event, frozen=True):
    """vCPU `vcpu` wrote EOIR for `intid`: a priority drop, and in EOImode 0 a deactivation
    too (`deactivates`); `trapped`: the hypervisor emulated the write."""

    vcpu: int
    intid: int
    deactivates: bool
    trapped: bool = False


class GuestDeactivated(Event, frozen=True):
    """vCPU `vcpu` deactivated `intid` other than by EOIR: `how` "dir" (ICV_DIR_EL1 in
    EOImode 1) or "icactiver" (a GICD_ICACTIVER write); `trapped`: the hypervisor saw it."""

    vcpu: int
    intid: int
    how: str
    trapped: bool


class IrqfdResampled(Event, frozen=True):
    """eventfd.c: irqfd_resampler_ack ran for `gsi` (the level line lowered, every
    resamplefd signalled) after the guest deactivated the level interrupt."""

    gsi: int


AnyEvent = (
    RunStarted
    | RunEnded
    | FindingReported
    | ActorStepped
    | ActorBlocked
    | ActorFinished
    | MessageSent
    | MessageDelivered
    | TimerFired
    | CellAccessed
    | LockAcquired
    | LockReleased
    | RequestMade
    | RequestChecked
    | ModeChanged
    | VcpuWoken
    | KickSent
    | GuestEntered
    | EntryAborted
    | GuestExited
    | IpisHandled
    | IrqQueued
    | HcrConfigured
    | LrFolded
    | EoicountReplayed
    | DirEmulated
    | ActiveChanged
    | IrqPruned
    | GuestAcked
    | GuestEoied
    | IrqfdResampled
    | GuestDeactivated
)

ENCODER = msgspec.json.Encoder()
DECODER: msgspec.json.Decoder[AnyEvent] = msgspec.json.Decoder(AnyEvent)


def encode_event(event: Event) -> bytes:
    """One event as a JSON line without the trailing newline."""
    return ENCODER.encode(event)


def decode_event(line: bytes | str) -> AnyEvent:
    """One JSON line back into its event Struct (raises msgspec.ValidationError if bad)."""
    return DECODER.decode(line)


def decode_lines(lines: Iterable[bytes]) -> Iterator[AnyEvent]:
    """Decode a JSON-lines stream, skipping blank lines."""
    for line in lines:
        if line.strip():
            yield DECODER.decode(line)
