"""The vGIC paths that interleave: queue, inject, flush, sync (fold + prune), DIR emulation.

vgic.c, vgic-v3.c and vgic-mmio.c, on the runtime's cells and locks. Every
lock acquire and every access to state the kernel reads without a lock
(active_spis, vcpu->requests, vcpu->mode) is an interleaving point. Work done
under a vCPU's ap_list_lock on entries of that list (summarize, sort, populate,
prune's scan) takes each entry's irq_lock without a separate point: no other
CPU can hold such an irq_lock across a point at that moment, because the only
place the model holds an irq_lock across a point is vgic_queue_irq_unlock's
insertion, which also holds the target's ap_list_lock.
"""

from __future__ import annotations

from typing import cast

from vgic_actors.arch.intid import SPI_MIN, is_sgi
from vgic_actors.arch.registers import EMPTY_LR, IchHcr, ListRegister
from vgic_actors.events import (
    ActiveChanged,
    AnyEvent,
    DirEmulated,
    EoicountReplayed,
    Event,
    HcrConfigured,
    IrqPruned,
    IrqQueued,
    LrFolded,
)
from vgic_actors.kvm.ap_list import summarize_ap_list, vgic_sort_ap_list, vgic_target_oracle
from vgic_actors.kvm.hcr import hardware_hcr, vgic_configure_hcr
from vgic_actors.kvm.irq import IrqConfig, VgicIrq, irq_is_pending, vgic_valid_spi
from vgic_actors.kvm.irq_routing import kvm_notify_acked_irq
from vgic_actors.kvm.lr import (
    FoldResult,
    compute_lr,
    fold_lr_locked,
    lr_signals_eoi_mi,
    populate_lr,
    pseudo_lr,
)
from vgic_actors.kvm.vm import (
    KVM_REQ_IRQ_PENDING,
    KVM_REQ_SLEEP,
    KVM_REQ_VGIC_PROCESS_UPDATE,
    Kvm,
    KvmVcpu,
    bcst_kick_needed,
)
from vgic_actors.runtime import (
    KVM_REQUEST_WAIT,
    current_actor,
    kvm_make_all_cpus_request,
    kvm_vcpu_kick,
    local_irq_save,
    point,
    spin_yield,
)


def _logging() -> bool:
    """Whether anyone listens to kernel events (they are built only then)."""
    return current_actor().sched.em.kernel_on


def _log(cls: type[Event], **fields: object) -> None:
    """Emit a kernel event stamped with the current step, virtual time and actor."""
    actor = current_actor()
    sched = actor.sched
    event = cls(step=sched.step, vt=sched.vt, actor=actor.name, **fields)
    sched.em.emit(cast(AnyEvent, event))  # every kernel Event subclass is in AnyEvent

# --- injection --------------------------------------------------------------------------


def vgic_model_needs_bcst_kick(kvm: Kvm) -> bool:
    """vgic.c: vgic_model_needs_bcst_kick (`bcst_kick_needed`)."""
    return bcst_kick_needed(kvm.sw, kvm.config)


async def kick_vcpu(kvm: Kvm, vcpu_id: int) -> None:
    """kvm_make_request(KVM_REQ_IRQ_PENDING, vcpu); kvm_vcpu_kick(vcpu)."""
    core = kvm.vcpus[vcpu_id].core
    await core.requests.kvm_make_request(KVM_REQ_IRQ_PENDING)
    await kvm_vcpu_kick(core)


async def vgic_queue_irq_unlock(kvm: Kvm, irq: VgicIrq) -> bool:
    """Put ``irq`` on its target's ap_list if it belongs on one, then kick.

    vgic.c: vgic_queue_irq_unlock. Entered with irq.lock held; returns with every
    lock dropped. Already queued (or nowhere to go): kick the owner, no count. On
    insertion of an SPI, active_spis is incremented under both locks and its 0 -> 1
    transition broadcasts KVM_REQ_IRQ_PENDING to every vCPU after the locks are
    dropped; otherwise only the target is kicked. Variant no-spi-tracking: no
    count, single kick. Mutant kick-only-target: the count moves, the kick is single.
    """
    dist = kvm.dist
    precounted = False  # fix F5: active_spis already counts this SPI (its broadcast done)
    while True:
        target = vgic_target_oracle(irq, dist.enabled)
        if irq.vcpu is not None or target is None:
            irq.lock.release()
            if precounted:
                await dist.active_spis.dec_if_positive()  # not queued after all
            if target is not None:
                if irq.vcpu is not None:
                    kvm.coverage["queue.already-queued"] += 1
                await kick_vcpu(kvm, target)
            return False
        irq.lock.release()
        if (kvm.sw.fix_bcst_before_queue and not precounted and _counted(kvm, irq)):
            # fix F5: count the SPI and broadcast, waiting for every vCPU in guest mode to
            # take the IPI (and so leave the guest), before the SPI is on any ap_list: no
            # vCPU can still run with the TDIR it computed from active_spis == 0 once the
            # SPI is deliverable. Preemptible here, as the broadcast after the unlock is.
            precounted = True
            if await dist.active_spis.fetch_inc() == 0:
                kvm.broadcasts_due += 1
                kvm.coverage["queue.broadcast"] += 1
                await _broadcast_irq_pending(kvm, KVM_REQUEST_WAIT)
            await irq.lock.acquire()
            continue
        tvcpu = kvm.vcpus[target]
        await tvcpu.ap_list_lock.acquire()
        await irq.lock.acquire()
        # Someone may have queued it, or changed its target, while irq_lock was dropped.
        if irq.vcpu is not None or vgic_target_oracle(irq, dist.enabled) != target:
            irq.lock.release()
            tvcpu.ap_list_lock.release()
            kvm.coverage["queue.retry"] += 1
            await irq.lock.acquire()
            continue
        if irq.is_lpi:
            irq.refcount += 1  # vgic_get_irq_kref: the ap_list holds a reference
        tvcpu.ap_list.append(irq)
        irq.vcpu = target
        counted = _counted(kvm, irq)
        bcst = counted and not precounted and await dist.active_spis.fetch_inc() == 0
        kvm.broadcasts_due += bool(bcst) and not kvm.sw.mutant_kick_only_target
        irq.lock.release()
        tvcpu.ap_list_lock.release()
        cov = kvm.coverage
        cov["queue.insert"] += 1
        cov["active_spis.inc"] += counted
        if _logging():
            _log(IrqQueued, intid=irq.intid, vcpu=target, bcst=bool(bcst))
        if bcst and not kvm.sw.mutant_kick_only_target:
            cov["queue.broadcast"] += 1
            # Between raw_spin_unlock_irqrestore(ap_list_lock) and the broadcast's get_cpu()
            # the injector is preemptible (preempt_enable is a preemption point under
            # CONFIG_PREEMPT; in atomic context the stall budget bounds it): the SPI is
            # deliverable and counted, and no vCPU has been told to trap DIR (F5).
            await point("vgic_queue_irq_unlock")
            await _broadcast_irq_pending(kvm)
        else:
            cov["queue.single-kick"] += 1
            await kick_vcpu(kvm, target)
        return True


async def _broadcast_irq_pending(kvm: Kvm, flags: int = 0) -> None:
    """The active_spis 0 -> 1 broadcast: kvm_make_all_cpus_request(kvm,
    KVM_REQ_IRQ_PENDING | flags), counted for broadcast_phase."""
    kvm.broadcasts_started += 1
    await kvm_make_all_cpus_request(kvm.cores, KVM_REQ_IRQ_PENDING | flags)
    kvm.broadcasts_done += 1


def _counted(kvm: Kvm, irq: VgicIrq) -> bool:
    """Whether queueing ``irq`` counts in active_spis (an SPI, with SPI tracking)."""
    return (kvm.sw.active_spis_accounting and vgic_model_needs_bcst_kick(kvm)
            and vgic_valid_spi(irq.intid, kvm.dist.nr_spis))


def broadcast_phase(kvm: Kvm, vcpu_id: int, intid: int | None = None) -> str:
    """Where the SPI-tracking broadcast stood for ``vcpu_id`` when its guest executed a DIR
    of ``intid`` that did not trap (the root cause of an untrapped lost deactivation):

    - ``no-broadcast``: no 0 -> 1 broadcast was ever due (no SPI tracking, a GICv2 model,
      a mutant that kicks only the target);
    - ``flushed-before-bcst``: the owner's flush put ``intid`` into an LR as pending while
      the 0 -> 1 broadcast was still unsent: vgic_queue_irq_unlock drops ap_list_lock
      (the SPI is deliverable) before it calls kvm_make_all_cpus_request, and the injecting
      thread is preemptible in between, so the owner could acknowledge and hand it over
      before any vCPU was told to trap DIR (F5; checked before the phases below, which
      only say how far the late broadcast had got by the DIR);
    - ``bcst-unsent``: active_spis went 0 -> 1 but its broadcast had not started (the
      injecting thread between the unlock and kvm_make_all_cpus_request: F5);
    - ``bcst-in-loop``: the broadcast loop was running and had not reached this vCPU (A');
    - ``request-set``: its KVM_REQ_IRQ_PENDING was set and the IPI not yet taken (A);
    - ``after-broadcast``: every broadcast was done and the request consumed, yet the vCPU
      ran with TDIR clear (a stale TDIR: another cause)."""
    if not kvm.broadcasts_due:
        return "no-broadcast"
    if intid is not None and intid in kvm.populated_before_bcst:
        return "flushed-before-bcst"
    if kvm.vcpus[vcpu_id].core.requests.peek() & (1 << KVM_REQ_IRQ_PENDING):
        return "request-set"
    if kvm.broadcasts_started < kvm.broadcasts_due:
        return "bcst-unsent"
    if kvm.broadcasts_done < kvm.broadcasts_started:
        return "bcst-in-loop"
    return "after-broadcast"


def vgic_validate_injection(irq: VgicIrq, level: bool, owner: str | None = None) -> bool:
    """vgic.c: vgic_validate_injection. Only the irq's owner (None: userspace) may inject;
    level: only a change counts; edge: only a rising edge."""
    if irq.owner != owner:
        return False
    if irq.config is IrqConfig.LEVEL:
        return level != irq.line_level
    return level


async def kvm_vgic_inject_irq(kvm: Kvm, vcpu_id: int | None, intid: int, level: bool,
                              owner: str | None = None) -> bool:
    """vgic.c: kvm_vgic_inject_irq. Latch an edge or set a line level, then queue.

    ``vcpu_id`` names the vCPU for private interrupts (None for SPIs); ``owner`` the
    in-kernel device injecting (None: userspace). Returns False when the injection
    was filtered (unknown INTID, another owner, or no change).
    """
    vcpu = kvm.vcpus[vcpu_id] if vcpu_id is not None else None
    irq = kvm.vgic_get_irq(vcpu, intid)
    if irq is None:
        return False
    await irq.lock.acquire()
    if not vgic_validate_injection(irq, level, owner):
        irq.lock.release()
        return False
    if irq.config is IrqConfig.LEVEL:
        irq.line_level = level
    else:
        irq.pending_latch = True
    await vgic_queue_irq_unlock(kvm, irq)
    return True


# --- entry ------------------------------------------------------------------------------


async def kvm_vgic_flush_hwstate(kvm: Kvm, vcpu: KvmVcpu) -> None:
    """vgic.c: kvm_vgic_flush_hwstate, then the hyp's restore into the hardware interface.

    Under the ap_list_lock: vgic_flush_lr_state (summarize, sort on overflow,
    populate in list order up to nr_lr, remember the last entry placed,
    clear the rest) and configure_hcr (which reads active_spis: a point).
    Variant pre-series: an empty ap_list skips all of it.
    """
    cfg, sw = kvm.config, kvm.sw
    if sw.flush_skips_empty_ap_list and not vcpu.ap_list:
        vcpu.used_lrs = 0
        vcpu.vgic_hcr = IchHcr(en=True)
    else:
        async with vcpu.ap_list_lock:
            await vgic_flush_lr_state(kvm, vcpu)
    cpuif = vcpu.cpuif
    cpuif.state.lrs[:] = vcpu.lrs
    cpuif.write_hcr(hardware_hcr(vcpu.vgic_hcr, sw, v3=not cfg.v2_model,
                                 host_tdir_cap=cfg.host_tdir_cap,
                                 common_trap=cfg.host_common_trap))


async def vgic_flush_lr_state(kvm: Kvm, vcpu: KvmVcpu) -> None:
    """vgic.c: vgic_flush_lr_state (ap_list_lock held).

    The LR-overflow rules (vgic.c's "close to black magic" comment):
    1. pending before active, so the guest can always drop priority and see the
       next pending interrupt (sort key 3; invariant: ap_list ordering);
    2. deactivations outside the LRs are counted in EOIcount (LRENPIE) and, for
       EOImode 1 or asymmetric SPI deactivation, seen by trapping DIR (TDIR);
    3. MI enables are only optimisations: an MI may arrive late;
    4. vLPIs drop their active state at fold; vSGIs must not move EOIcount.
    """
    cfg, sw, dist = kvm.config, kvm.sw, kvm.dist
    vid, nr_lr, v2 = vcpu.vcpu_id, cfg.nr_lr, cfg.v2_model
    vmcr = vcpu.cpuif.state.vmcr
    als = summarize_ap_list(vcpu.ap_list, vid, dist.enabled)
    if als.outside_lrs(nr_lr):
        kvm.coverage["flush.sort"] += 1
        # the model's count of overflow on several vCPUs at once (another ap_list too long)
        kvm.coverage["flush.overflow-multi"] += any(
            o is not vcpu and len(o.ap_list) > nr_lr for o in kvm.vcpus)
        vgic_sort_ap_list(vcpu.ap_list, vid, vmcr, dist.enabled, sw)
    vcpu.last_lr_irq = None
    n = 0
    for irq in vcpu.ap_list:
        if vgic_target_oracle(irq, dist.enabled) == vid:
            lr = compute_lr(irq, v2)
            populate_lr(irq, lr, v2)
            if lr.state.pending and irq.is_spi:  # the model's root-cause record, not KVM's
                if kvm.broadcasts_started < kvm.broadcasts_due:
                    kvm.populated_before_bcst.add(irq.intid)
                else:
                    kvm.populated_before_bcst.discard(irq.intid)
            vcpu.lrs[n] = lr
            n += 1
            vcpu.last_lr_irq = irq
            if n == nr_lr:
                break
    for i in range(n, nr_lr):
        vcpu.lrs[i] = EMPTY_LR
    vcpu.used_lrs = n
    if sw.mutant_stale_tdir:
        active_spis = vcpu.active_spis_at_check
    else:
        active_spis = await dist.active_spis.read()
    hcr = vgic_configure_hcr(  # by host: the gicv3_cpuif static key
        als, vmcr, nr_lr, sw, v3=not cfg.host_v2, host_tdir_cap=cfg.host_tdir_cap,
        active_spis=active_spis,
    )
    vcpu.vgic_hcr = hcr
    _cover_hcr(kvm, hcr, als.active_outside_lrs(nr_lr), active_spis)
    if _logging():
        _log(HcrConfigured, vcpu=vid, used_lrs=n, lrs=[lr.vintid for lr in vcpu.lrs[:n]],
             tdir=hcr.tdir, npie=hcr.npie, lrenpie=hcr.lrenpie, uie=hcr.uie,
             active_spis=active_spis, vgrp0eie=hcr.vgrp0eie, vgrp0die=hcr.vgrp0die,
             vgrp1eie=hcr.vgrp1eie, vgrp1die=hcr.vgrp1die)


def _cover_hcr(kvm: Kvm, hcr: IchHcr, actives_outside: bool, active_spis: int) -> None:
    """Count the ICH_HCR_EL2 conditions vgic_v3_configure_hcr set (checks/coverage.py)."""
    cov = kvm.coverage
    if hcr.tdir:
        cov["hcr.tdir-actives-outside"] += actives_outside
        cov["hcr.tdir-active-spis"] += active_spis > 0
    cov["hcr.npie"] += hcr.npie
    cov["hcr.lrenpie"] += hcr.lrenpie
    cov["hcr.uie"] += hcr.uie


# --- exit -------------------------------------------------------------------------------


def vgic_save_state(kvm: Kvm, vcpu: KvmVcpu) -> None:
    """hyp/vgic-v3-sr.c: __vgic_v3_save_state. Read back the LRs; keep EOIcount only if
    the shadow HCR had LRENPIE (kernel-vgic.md 5); leave the hardware HCR and LRs zero."""
    cpuif = vcpu.cpuif
    for i in range(vcpu.used_lrs):
        vcpu.lrs[i] = cpuif.state.lrs[i]
    if vcpu.vgic_hcr.lrenpie and kvm.sw.eoicount_replay:
        vcpu.vgic_hcr.eoicount = cpuif.state.hcr.eoicount
    else:
        vcpu.vgic_hcr.eoicount = 0
    cpuif.write_hcr(IchHcr())
    cpuif.state.lrs[:] = [EMPTY_LR] * len(cpuif.state.lrs)


async def kvm_vgic_sync_hwstate(kvm: Kvm, vcpu: KvmVcpu) -> None:
    """vgic.c: kvm_vgic_sync_hwstate: save, fold the LRs (and EOIcount), prune."""
    vgic_save_state(kvm, vcpu)
    await vgic_fold_lr_state(kvm, vcpu)
    await vgic_prune_ap_list(kvm, vcpu)


async def vgic_fold_lr(kvm: Kvm, vcpu: KvmVcpu, lr_val: ListRegister,
                       pseudo: bool = False) -> None:
    """vgic-v3.c: vgic_v3_fold_lr. Fold one LR (real or pseudo) under its irq_lock; then,
    unlocked, kvm_notify_acked_irq and atomic_dec_if_positive(active_spis) when due.

    On a GICv2 host, vgic-v2.c: vgic_v2_fold_lr (notify on the EOI condition alone,
    never active_spis). The host picks, not the guest model (vgic.c:
    vgic_fold_lr_state tests kvm_vgic_global_state.type, commit 1c3b3cadcd69): a
    GICv2 guest on a GICv3 host folds here with the GICv3 rules (finding F3).
    Where the notification needs the EOI condition alone (vgic_v2_fold_lr, and the
    pre-series vgic_v3_fold_lr_state) it comes *first*, before the lookup and the lock.
    """
    cfg, sw = kvm.config, kvm.sw
    early = _early_notify(kvm, lr_val)
    if early:  # "Notify fds when the guest EOI'ed a level-triggered SPI"
        kvm.acked_notifications.append(lr_val.vintid)
        await kvm_notify_acked_irq(kvm.irq_routing, 0, lr_val.vintid - SPI_MIN)
    irq = kvm.vgic_get_irq(vcpu, lr_val.vintid)
    if irq is None:
        return
    async with irq.lock:
        res = fold_lr_locked(irq, lr_val, sw, cfg.v2_model, kvm.dist.nr_spis,
                             kvm.phys, host_v2=cfg.host_v2)
    await _fold_lr_unlocked(kvm, vcpu, irq, lr_val, res, pseudo, early)


def _early_notify(kvm: Kvm, lr_val: ListRegister) -> bool:
    """Whether the fold notifies on the EOI condition alone, before the lock (GICv2
    host, pre-series): see vgic_fold_lr."""
    cfg, sw = kvm.config, kvm.sw
    return ((cfg.host_v2 or not sw.notify_requires_deactivated)
            and not sw.mutant_dec_on_every_fold and lr_signals_eoi_mi(lr_val)
            and vgic_valid_spi(lr_val.vintid, kvm.dist.nr_spis))


async def _fold_lr_unlocked(kvm: Kvm, vcpu: KvmVcpu, irq: VgicIrq, lr_val: ListRegister,
                            res: FoldResult, pseudo: bool, early: bool) -> None:
    """vgic_v3_fold_lr after its scoped_guard: kvm_notify_acked_irq and
    atomic_dec_if_positive(active_spis) when due (irq_lock dropped).
    Fix F3 (``fix_notify_on_eoi``): ``res.notify_only`` notifies without the decrement."""
    cfg = kvm.config
    cov = kvm.coverage
    cov["fold.deactivated"] += res.deactivated
    cov["fold.pending-kept"] += lr_val.state.pending
    cov["fold.pseudo-lr"] += pseudo
    if _logging():
        _log(LrFolded, vcpu=vcpu.vcpu_id, intid=irq.intid, state=lr_val.state.name,
             deactivated=res.deactivated, pseudo=pseudo)
    if (res.notify_and_dec or res.notify_only) and not early:
        cov["fold.eoi-notify"] += 1
        kvm.acked_notifications.append(irq.intid)
        await kvm_notify_acked_irq(kvm.irq_routing, 0, irq.intid - SPI_MIN)
        if (res.notify_and_dec and kvm.sw.active_spis_accounting and not cfg.host_v2
                and not kvm.sw.fix_count_spis_on_ap_lists):  # fix F6: prune counts down
            cov["active_spis.dec"] += await kvm.dist.active_spis.dec_if_positive() >= 0


async def vgic_fold_lr_state(kvm: Kvm, vcpu: KvmVcpu) -> None:
    """vgic-v3.c: vgic_v3_fold_lr_state. Fold the used LRs, then replay EOIcount.

    EOImode 0 overflow: each unit of EOIcount deactivates the next active entry
    still targeting this vCPU, walking the ap_list (no ap_list_lock) from the
    entry after the last one placed in an LR (merged, 6da5e537f5af; the fold
    returns at once when no LR was placed) or from the head (v4-applied, bug K1).
    As in the kernel (list_for_each_entry_continue from host_data's last_lr_irq) the
    walk trusts that entry to be still linked: no membership test. The model's
    use-after-unlink detector records a freed entry (always read, for its next link)
    or an unlinked one with EOIcount left to replay (a poisoned link followed), and
    the walk stops there (Kvm.vgic_irq_stale).
    """
    sw = kvm.sw
    after_last = sw.eoicount_walk_start == "after_last_lr"
    if after_last and vcpu.last_lr_irq is None:
        vcpu.used_lrs = 0
        return
    eoicount = vcpu.vgic_hcr.eoicount if sw.eoicount_replay else 0
    for i in range(vcpu.used_lrs):
        await vgic_fold_lr(kvm, vcpu, vcpu.lrs[i])
    start = 0
    last = vcpu.last_lr_irq
    if after_last and last is not None:
        if kvm.vgic_irq_stale(last, vcpu, "vgic_v3_fold_lr_state's EOIcount walk (last_lr_irq)",
                              deref_next=eoicount > 0):
            eoicount = 0
        else:
            start = next((n + 1 for n, e in enumerate(vcpu.ap_list) if e is last), 0)
    i = start
    while eoicount > 0 and i < len(vcpu.ap_list):
        irq = vcpu.ap_list[i]
        i += 1
        async with irq.lock:
            if vgic_target_oracle(irq, kvm.dist.enabled) != vcpu.vcpu_id or not irq.active:
                continue
            lr = pseudo_lr(irq, kvm.config.v2_model)
        if lr.hw:  # vgic_v3_deactivate_phys
            kvm.coverage["hw.deactivate-kvm"] += 1
            kvm.phys.deactivate_on(vcpu.vcpu_id, lr.pintid)
        kvm.coverage["eoicount.replay"] += 1
        if _logging():
            _log(EoicountReplayed, vcpu=vcpu.vcpu_id, intid=irq.intid, walk_start=start)
        await vgic_fold_lr(kvm, vcpu, lr, pseudo=True)
        eoicount -= 1
    vcpu.used_lrs = 0


async def vgic_prune_ap_list(kvm: Kvm, vcpu: KvmVcpu) -> None:
    """vgic.c: vgic_prune_ap_list. Drop entries that go nowhere; migrate those whose
    oracle names another vCPU (both ap_list_locks, lower vcpu_id first, then re-check)
    and kick it; restart after every migration. Never touches active_spis.

    The re-check after re-locking is the oracle's alone, as in the kernel: no test that
    the entry is still on this vCPU's list (list_del trusts it). The use-after-unlink
    detector records a migration of an entry that left the list (Kvm.vgic_irq_stale).

    Fix F6 (``fix_count_spis_on_ap_lists``): each counted SPI taken off the list drops
    active_spis by one, after ap_list_lock is released (the count only stays high a
    little longer: TDIR is set a little longer, never cleared early).
    """
    dist = kvm.dist
    while True:
        await vcpu.ap_list_lock.acquire()
        migrate: tuple[VgicIrq, int] | None = None
        uncounted = 0
        for irq in list(vcpu.ap_list):
            target = vgic_target_oracle(irq, dist.enabled)
            if target is None:
                vcpu.ap_list.remove(irq)
                irq.vcpu = None
                uncounted += kvm.sw.fix_count_spis_on_ap_lists and _counted(kvm, irq)
                kvm.coverage["prune.remove"] += 1
                if _logging():
                    _log(IrqPruned, vcpu=vcpu.vcpu_id, intid=irq.intid)
                kvm.vgic_put_irq(irq)  # LPIs: drop the list's reference (may free it)
                continue
            if target != vcpu.vcpu_id:
                migrate = (irq, target)
                break
        vcpu.ap_list_lock.release()
        for _ in range(uncounted):
            kvm.coverage["active_spis.dec"] += await dist.active_spis.dec_if_positive() >= 0
        if migrate is None:
            return
        irq, target = migrate
        tvcpu = kvm.vcpus[target]
        first, second = sorted((vcpu, tvcpu), key=lambda v: v.vcpu_id)
        await first.ap_list_lock.acquire()
        await second.ap_list_lock.acquire()
        await irq.lock.acquire()
        moved = vgic_target_oracle(irq, dist.enabled) == target
        if moved and kvm.vgic_irq_stale(irq, vcpu, "vgic_prune_ap_list's migration (list_del)"):
            moved = False
        if moved:
            vcpu.ap_list.remove(irq)
            tvcpu.ap_list.append(irq)
            irq.vcpu = target
        irq.lock.release()
        second.ap_list_lock.release()
        first.ap_list_lock.release()
        if moved:
            kvm.coverage["prune.migrate"] += 1
            if _logging():
                _log(IrqPruned, vcpu=vcpu.vcpu_id, intid=irq.intid, to=target)
            await kick_vcpu(kvm, target)


# --- halting the guest and the active state (vgic-mmio.c, arm.c) -----------------------


async def kvm_arm_halt_guest(kvm: Kvm) -> None:
    """arm.c: kvm_arm_halt_guest. Pause every vCPU and make each leave the guest
    (KVM_REQ_SLEEP is WAIT | NO_WAKEUP: wait for the IPIs to vCPUs not outside)."""
    kvm.coverage["halt"] += 1
    for vcpu in kvm.vcpus:
        vcpu.pause = True
    await kvm_make_all_cpus_request(kvm.cores, KVM_REQ_SLEEP)


async def kvm_arm_resume_guest(kvm: Kvm) -> None:
    """arm.c: kvm_arm_resume_guest. Clear pause and wake every vCPU."""
    for vcpu in kvm.vcpus:
        vcpu.pause = False
        await vcpu.core.wait.kvm_vcpu_wake_up()


def _needs_halt(kvm: Kvm, requester: KvmVcpu | None, intid: int) -> bool:
    """vgic-mmio.c: vgic_access_active_prepare's condition: an SPI, or (GICv3) another
    vCPU's private interrupt."""
    return intid >= SPI_MIN or requester is None or not kvm.config.v2_model


async def vgic_mmio_change_active(kvm: Kvm, requester: KvmVcpu | None, intid: int,
                                  active: bool) -> None:
    """vgic-mmio.c: vgic_mmio_change_active under config_lock with the guest halted.

    Deactivation clears KVM's active copy (and the physical active state for HW
    irqs); activation sets it and queues. Neither touches active_spis.
    """
    irq = kvm.vgic_get_irq(requester, intid)
    if irq is None:
        return
    async with kvm.dist.config_lock:
        halt = _needs_halt(kvm, requester, intid)
        if halt:
            await kvm_arm_halt_guest(kvm)
        await irq.lock.acquire()
        if kvm.sw.fix_change_active_waits_for_lr:
            await _wait_for_lr_owner(requester, irq)
        irq.active = active
        if irq.hw and (active or kvm.sw.hw_deactivate_phys):
            # vgic_hw_irq_change_active: the physical active state follows
            kvm.coverage["hw.deactivate-kvm"] += not active
            kvm.phys.set_active(irq.hwintid, active)
        if _logging():
            _log(ActiveChanged, intid=intid, active=active, halted=halt)
        if active:
            await vgic_queue_irq_unlock(kvm, irq)
        else:
            irq.lock.release()
        if halt:
            await kvm_arm_resume_guest(kvm)


async def _wait_for_lr_owner(requester: KvmVcpu | None, irq: VgicIrq) -> None:
    """Proposed fix for F1 (switch ``fix_change_active_waits_for_lr``; irq_lock held on
    entry and on return): while ``irq`` sits in another vCPU's LRs (``on_lr``), drop
    irq_lock and let that vCPU fold it (cond_resched_lock). The halt has set ``pause``,
    so once folded the owner cannot repopulate it.

    The 4.x vgic_mmio_change_active loop (``while (irq->vcpu && irq->vcpu != requester
    && irq->vcpu->cpu != -1) cond_resched_lock(&irq->irq_lock)``), restated with on_lr:
    kvm_arm_halt_guest neither IPIs nor waits for a vCPU OUTSIDE_GUEST_MODE whose LRs
    are loaded (after flush, before smp_store_mb(IN_GUEST_MODE); after the exit's mode
    store, before sync), which is F1 and its mirror."""
    me = requester.vcpu_id if requester is not None else None
    while irq.on_lr and irq.vcpu is not None and irq.vcpu != me:
        irq.lock.release()
        spin_yield()
        await point("vgic_mmio_change_active.cond_resched_lock")
        await irq.lock.acquire()


async def vgic_mmio_read_active(kvm: Kvm, requester: KvmVcpu | None, intid: int) -> bool:
    """vgic-mmio.c: vgic_mmio_read_active (ISACTIVER/ICACTIVER read), halting the guest so
    that LR state is folded first."""
    irq = kvm.vgic_get_irq(requester, intid)
    if irq is None:
        return False
    async with kvm.dist.config_lock:
        halt = _needs_halt(kvm, requester, intid)
        if halt:
            await kvm_arm_halt_guest(kvm)
        async with irq.lock:
            active = irq.active
        if halt:
            await kvm_arm_resume_guest(kvm)
    return active


# --- DIR emulation ----------------------------------------------------------------------


def icactiver_target(kvm: Kvm, intid: int) -> int:
    """The INTID the big-hammer ICACTIVER write really clears.

    Correct: register offset (intid / 32) * 4, bit intid % 32 -> ``intid``.
    Variant v1-posted (K2): offset intid / 32, read by the MMIO layer as INTID
    offset * 8, so SPI 32 clears INTID 8.
    """
    if kvm.sw.icactiver_offset == "word":
        return intid
    return (intid // 32) * 8 + intid % 32


async def vgic_v3_deactivate(kvm: Kvm, vcpu: KvmVcpu, val: int) -> None:
    """vgic-v3.c: vgic_v3_deactivate: a trapped DIR that missed this vCPU's own LRs.

    Three outcomes: the irq is on no ap_list (nothing); its state is in some
    vCPU's LR (treated as a GICD_ICACTIVER write: halt everyone, clear, resume);
    it is active outside the LRs (fold a pseudo-LR with the active bit clear, on
    the owner's behalf: level SW SPIs notify and decrement active_spis). The lookup,
    the pseudo-LR and its fold run under local_irq_save (an IRQs-off region: the gap
    between dropping irq_lock and the fold re-taking it is bounded by the stall
    budget, F2's window). Then, IRQs restored, the ICACTIVER big hammer and
    KVM_REQ_VGIC_PROCESS_UPDATE to the owner, without a kick.
    Fix F2 (``fix_deactivate_fold_locked``): the pseudo-LR is folded under the irq_lock
    it was built under; the notify and the active_spis decrement follow unlocked.
    Variant v1-posted: owner from the oracle, and nothing if KVM's copy is not active.
    On a GICv2 host this is vgic-v2.c: vgic_v2_deactivate (vgic-mmio-v2.c:
    vgic_mmio_write_dir picks by host), the same structure, its fold vgic_v2_fold_lr.
    """
    cfg, sw = kvm.config, kvm.sw
    cpuid = (val >> 10) & 7 if cfg.v2_model else 0
    intid = val & 0x3FF if cfg.v2_model else val & 0xFFFFFF
    # vgic_v2_deactivate (a GICv2 host) has no INTID range check: an unknown INTID
    # finds no irq (WARN_ON_ONCE) and does nothing, which the lookup below does too.
    out_of_range = intid >= SPI_MIN + kvm.dist.nr_spis and not cfg.host_v2
    if not vcpu.cpuif.state.vmcr.veoim or out_of_range:
        kvm.coverage["deactivate.ignored"] += 1
        if _logging():
            _log(DirEmulated, vcpu=vcpu.vcpu_id, intid=intid, outcome="ignored")
        return
    mmio = False
    lr = None
    folded: FoldResult | None = None
    owner = None
    with local_irq_save("vgic_v3_deactivate"):  # "the same context as LR handling"
        irq = kvm.vgic_get_irq(vcpu, intid)
        if irq is None:
            return
        await irq.lock.acquire()
        if sw.deactivate_owner == "irq_vcpu":
            owner = irq.vcpu
        else:
            owner = vgic_target_oracle(irq, kvm.dist.enabled) if irq.active else None
        if owner is None:
            outcome = "not-queued" if sw.deactivate_owner == "irq_vcpu" else "v1-inactive"
        elif irq.on_lr:
            mmio = True
            outcome = "icactiver"
        elif (cfg.v2_model and is_sgi(intid) and sw.v2_sgi_cpuid_match
              and irq.active_source != cpuid):
            owner = None
            outcome = "cpuid-mismatch"
        else:
            lr = pseudo_lr(irq, cfg.v2_model)
            outcome = "pseudo-lr"
            if sw.fix_deactivate_fold_locked:  # fix F2: fold before dropping irq_lock
                folded = fold_lr_locked(irq, lr, sw, cfg.v2_model, kvm.dist.nr_spis,
                                        kvm.phys, host_v2=cfg.host_v2)
        irq.lock.release()
        kvm.coverage[f"deactivate.{outcome}"] += 1
        if _logging():
            _log(DirEmulated, vcpu=vcpu.vcpu_id, intid=intid, outcome=outcome,
                 owner=-1 if owner is None else owner)
        if lr is not None:
            if lr.hw and sw.hw_deactivate_phys:  # vgic_v3_deactivate_phys
                kvm.coverage["hw.deactivate-kvm"] += 1
                kvm.phys.deactivate_on(vcpu.vcpu_id, lr.pintid)
            if folded is None:
                await vgic_fold_lr(kvm, vcpu, lr, pseudo=True)
            else:  # fix F2: the fold's unlocked tail (its GICv2-host notify comes last)
                early = _early_notify(kvm, lr)
                if early:
                    kvm.acked_notifications.append(lr.vintid)
                    await kvm_notify_acked_irq(kvm.irq_routing, 0, lr.vintid - SPI_MIN)
                await _fold_lr_unlocked(kvm, vcpu, irq, lr, folded, True, early)
    if mmio:
        await vgic_mmio_change_active(kvm, vcpu, icactiver_target(kvm, intid), False)
    if owner is not None:
        await kvm.vcpus[owner].core.requests.kvm_make_request(KVM_REQ_VGIC_PROCESS_UPDATE)


def kvm_vgic_vcpu_pending_irq(kvm: Kvm, vcpu: KvmVcpu) -> bool:
    """Whether ``vcpu`` has an interrupt it could take: vgic.c: kvm_vgic_vcpu_pending_irq.

    Commit 1c3b3cadcd69: false while the distributor is disabled; otherwise an entry of
    the vCPU's ap_list that is pending, enabled, *not active* and of a priority below
    VMCR.PMR (vgic_get_vmcr: the saved VMCR). Group enables are not looked at, nor is
    the entry's target. The kernel walks under ap_list_lock and each irq_lock; the
    model evaluates it inside the WFI wait, after that wait's own point, so no point
    here. GICv4's its_vpe.pending_last is not modelled.
    """
    if not kvm.dist.enabled:
        return False
    pmr = vcpu.cpuif.state.vmcr.vpmr
    return any(
        irq_is_pending(irq) and irq.enabled and not irq.active and irq.priority < pmr
        for irq in vcpu.ap_list
    )


def kvm_arch_vcpu_runnable(kvm: Kvm, vcpu: KvmVcpu) -> bool:
    """arm.c: kvm_arch_vcpu_runnable: (an IRQ line or a vGIC interrupt pending) and the
    vCPU neither stopped nor paused (vcpu->arch.pause: kvm_arm_halt_guest's flag).

    HCR_EL2.VI/VF lines (userspace irqchip) and power-off are not modelled: with the
    in-kernel vGIC only kvm_vgic_vcpu_pending_irq remains.
    """
    return kvm_vgic_vcpu_pending_irq(kvm, vcpu) and not vcpu.pause
