"""The emulated GICv3 ITS and the LPIs it maps (vgic-its.c), minimal and faithful.

What is modelled: the device table (MAPD), the collection table (MAPC), interrupt
translation entries (MAPTI/MAPI, DISCARD, MOVI), LPI allocation into the distributor's
``lpi_xa`` by vgic_add_lpi with a reference count (one per ITTE, one while on an
ap_list), the LPI configuration table in guest memory (enable bit and priority per LPI,
read by update_lpi_config on MAPTI/MAPI, INV and INVALL), INT and CLEAR, and MSIs
signalled from outside (vgic_its_inject_msi, behind KVM_SIGNAL_MSI).

How the guest reaches it: the guest writes one command into the command queue and
advances GITS_CWRITER past it; that MMIO write exits like a GICD access and is served by
the **distributor actor** (``distributor.py`` routes ``ItsCommandWrite`` here): one
command per write. The kernel runs MMIO handlers in the faulting vCPU's thread; the
model serves every emulated-device access from one actor, the ITS locks below keeping
the kernel's serialisation against MSIs injected by other actors.

Locks (kernel order): its->cmd_lock > its->its_lock > lpi_xa.xa_lock > ap_list_lock >
irq_lock; the two ITS mutexes are model spinlocks with those ranks.

Not modelled (the ITS is as a booted guest leaves it): GITS_CTLR.Enable, GITS_CBASER/
BASER and GICR_PROPBASER/PENDBASER programming (the ITS is enabled, its tables valid,
LPIs enabled on every redistributor, PROPBASER.IDbits = 16); the pending tables (LPIs
start not pending: vgic_v3_lpi_sync_pending_status reads zeros); the MSI translation
cache (vgic_its_inject_cached_translation: a lockless fast path giving the same result);
MOVALL, GICv4 direct injection, save/restore.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vgic_actors.arch.intid import LPI_MIN
from vgic_actors.kvm.guest_api import LPI_PROP_ENABLED, ItsCommandWrite, lpi_prop_key
from vgic_actors.kvm.irq import IrqConfig, VgicIrq
from vgic_actors.kvm.vgic import vgic_queue_irq_unlock
from vgic_actors.kvm.vm import (
    IRQ_LOCK_FLAVOUR,
    RANK_IRQ_LOCK,
    RANK_ITS_CMD_LOCK,
    RANK_ITS_LOCK,
    Kvm,
)
from vgic_actors.runtime import SpinLock, point

# include/linux/irqchip/arm-gic-v3.h: ITS command error numbers (positive: "the guest's
# mapping blocks it", as opposed to negative errnos for generic failures).
E_ITS_MOVI_UNMAPPED_INTERRUPT = 0x010107
E_ITS_MOVI_UNMAPPED_COLLECTION = 0x010109
E_ITS_INT_UNMAPPED_INTERRUPT = 0x010307
E_ITS_CLEAR_UNMAPPED_INTERRUPT = 0x010507
E_ITS_MAPD_DEVICE_OOR = 0x010801
E_ITS_MAPD_ITTSIZE_OOR = 0x010802
E_ITS_MAPC_PROCNUM_OOR = 0x010902
E_ITS_MAPC_COLLECTION_OOR = 0x010903
E_ITS_MAPTI_UNMAPPED_DEVICE = 0x010A04
E_ITS_MAPTI_ID_OOR = 0x010A05
E_ITS_MAPTI_PHYSICALID_OOR = 0x010A06
E_ITS_INV_UNMAPPED_INTERRUPT = 0x010C07
E_ITS_INVALL_UNMAPPED_COLLECTION = 0x010D09
E_ITS_DISCARD_UNMAPPED_INTERRUPT = 0x010F07

ENODEV = 19
EBUSY = 16

VITS_TYPER_IDBITS = 16  # EventID bits a device may have
VITS_TYPER_DEVBITS = 16  # DeviceID bits
INTERRUPT_ID_BITS_ITS = 16  # LPI INTIDs below 1 << 16 (PROPBASER.IDbits as KVM caps it)
LPI_PROP_PRIORITY_MASK = 0xFC


@dataclass(eq=False)
class ItsCollection:
    """struct its_collection: ``target_addr`` is a vcpu_id, None = COLLECTION_NOT_MAPPED."""

    collection_id: int
    target_addr: int | None = None


@dataclass(eq=False)
class ItsIte:
    """struct its_ite: an event's LPI and collection."""

    event_id: int
    collection: ItsCollection | None
    irq: VgicIrq | None = None


@dataclass(eq=False)
class ItsDevice:
    """struct its_device: its interrupt translation table, by EventID in mapping order."""

    device_id: int
    num_eventid_bits: int
    itt: dict[int, ItsIte] = field(default_factory=dict)


@dataclass(eq=False)
class VgicIts:
    """struct vgic_its. ``cmd_log`` records each command and its return value, which the
    kernel computes and then discards (vgic_its_process_commands): for tests only."""

    enabled: bool = True
    devices: dict[int, ItsDevice] = field(default_factory=dict)
    collections: dict[int, ItsCollection] = field(default_factory=dict)
    cmd_lock: SpinLock = field(default_factory=lambda: SpinLock(
        "its.cmd_lock", RANK_ITS_CMD_LOCK, flavour="mutex"))
    its_lock: SpinLock = field(default_factory=lambda: SpinLock(
        "its.its_lock", RANK_ITS_LOCK, flavour="mutex"))
    cmd_log: list[tuple[str, int]] = field(default_factory=list)


def vgic_its_get(kvm: Kvm) -> VgicIts | None:
    """The VM's ITS (vgic_has_its): a GICv3 model gets one, created on first use as if
    userspace had created the KVM_DEV_TYPE_ARM_VGIC_ITS device before running."""
    if kvm.config.v2_model:
        return None
    if kvm.its is None:
        kvm.its = VgicIts()
    return kvm.its


def its_is_collection_mapped(coll: ItsCollection | None) -> bool:
    """vgic-its.c: its_is_collection_mapped."""
    return coll is not None and coll.target_addr is not None


def find_ite(its: VgicIts, device_id: int, event_id: int) -> ItsIte | None:
    """vgic-its.c: find_ite (its_lock held)."""
    device = its.devices.get(device_id)
    return device.itt.get(event_id) if device is not None else None


# --- LPIs: allocation, configuration, affinity ------------------------------------------


async def update_lpi_config(kvm: Kvm, irq: VgicIrq, filter_vcpu: int | None) -> None:
    """vgic-its.c: update_lpi_config. Read the LPI's configuration byte from guest memory
    (a point: the guest may be writing it), then, unless ``filter_vcpu`` names another
    target, set priority and enable under the irq_lock and vgic_queue_irq_unlock (a
    pending LPI just enabled is queued and its target kicked)."""
    await point(f"read_guest.{lpi_prop_key(irq.intid)}")
    prop = kvm.guest_memory.get(lpi_prop_key(irq.intid), 0)
    await irq.lock.acquire()
    if filter_vcpu is None or filter_vcpu == irq.target_vcpu:
        kvm.coverage["its.inv-disable-queued"] += (
            irq.enabled and not prop & LPI_PROP_ENABLED and irq.vcpu is not None)
        irq.priority = prop & LPI_PROP_PRIORITY_MASK
        irq.enabled = bool(prop & LPI_PROP_ENABLED)
        await vgic_queue_irq_unlock(kvm, irq)
        return
    irq.lock.release()


async def vgic_add_lpi(kvm: Kvm, intid: int, vcpu_id: int | None) -> VgicIrq:
    """vgic-its.c: vgic_add_lpi. Return the LPI ``intid`` with a new reference: the
    existing one, or a fresh edge, Group 1 vgic_irq targeting ``vcpu_id`` inserted into
    lpi_xa under its lock (re-checking for a racing insertion); then read its
    configuration from the property table. Its pending state starts clear (pending
    tables are not modelled)."""
    dist = kvm.dist
    irq = kvm.vgic_get_irq(None, intid)
    if irq is not None:
        irq.refcount += 1
        return irq
    new = VgicIrq(intid=intid, target_vcpu=vcpu_id, config=IrqConfig.EDGE, group=1,
                  refcount=1)
    new.lock = SpinLock(f"lpi{intid}", RANK_IRQ_LOCK, intid, flavour=IRQ_LOCK_FLAVOUR)
    async with dist.lpi_xa_lock:
        old = dist.lpi_xa.get(intid)
        if old is not None:  # someone was faster: use theirs
            old.refcount += 1
            irq = old
        else:
            dist.lpi_xa[intid] = new
            irq = new
    await update_lpi_config(kvm, irq, None)
    return irq


async def update_affinity(irq: VgicIrq, vcpu_id: int | None) -> None:
    """vgic-its.c: update_affinity. Retarget under the irq_lock, nothing more: a queued
    LPI moves when its owner next prunes (as for GICD_IROUTER)."""
    async with irq.lock:
        irq.target_vcpu = vcpu_id


async def update_affinity_collection(its: VgicIts, coll: ItsCollection) -> None:
    """vgic-its.c: update_affinity_collection: every ITTE of ``coll`` follows its target."""
    for device in list(its.devices.values()):
        for ite in list(device.itt.values()):
            if ite.collection is coll and ite.irq is not None and its_is_collection_mapped(coll):
                await update_affinity(ite.irq, coll.target_addr)


def its_free_ite(kvm: Kvm, device: ItsDevice, ite: ItsIte) -> None:
    """vgic-its.c: its_free_ite. Unlink the ITTE and drop its LPI reference."""
    del device.itt[ite.event_id]
    if ite.irq is not None:
        kvm.vgic_put_irq(ite.irq)


def vgic_its_free_device(kvm: Kvm, its: VgicIts, device: ItsDevice) -> None:
    """vgic-its.c: vgic_its_free_device. Every ITTE goes too (unmapping a device with
    valid ITTEs is UNPREDICTABLE; KVM frees them)."""
    for ite in list(device.itt.values()):
        its_free_ite(kvm, device, ite)
    del its.devices[device.device_id]


def vgic_its_free_collection(its: VgicIts, coll_id: int) -> None:
    """vgic-its.c: vgic_its_free_collection. ITTEs of the collection lose it."""
    coll = its.collections.pop(coll_id, None)
    if coll is None:
        return
    for device in its.devices.values():
        for ite in device.itt.values():
            if ite.collection is coll:
                ite.collection = None


# --- translation and injection ----------------------------------------------------------


def vgic_its_resolve_lpi(its: VgicIts, device_id: int, event_id: int) -> tuple[int, VgicIrq | None]:
    """vgic-its.c: vgic_its_resolve_lpi (its_lock held): (0, irq), -EBUSY when the ITS is
    disabled, or E_ITS_INT_UNMAPPED_INTERRUPT for an unmapped device, event or collection."""
    if not its.enabled:
        return -EBUSY, None
    ite = find_ite(its, device_id, event_id)
    if ite is None or not its_is_collection_mapped(ite.collection) or ite.irq is None:
        return E_ITS_INT_UNMAPPED_INTERRUPT, None
    return 0, ite.irq


async def vgic_its_trigger_msi(kvm: Kvm, its: VgicIts, device_id: int, event_id: int) -> int:
    """vgic-its.c: vgic_its_trigger_msi (its_lock held). Translate, latch the LPI pending
    and queue it. Returns 0, a positive ITS error or a negative errno."""
    err, irq = vgic_its_resolve_lpi(its, device_id, event_id)
    if err or irq is None:
        return err
    await irq.lock.acquire()
    irq.pending_latch = True
    await vgic_queue_irq_unlock(kvm, irq)
    return 0


async def vgic_its_inject_msi(kvm: Kvm, devid: int, eventid: int) -> int:
    """vgic-its.c: vgic_its_inject_msi, KVM_SIGNAL_MSI's backend (kvm_set_msi).

    Returns what the ioctl returns: 1 when the MSI was delivered to a valid translation,
    0 when the guest's mapping blocks it (unmapped device, event or collection: the
    positive ITS error is folded to 0), a negative errno otherwise (-ENODEV: no ITS,
    e.g. a GICv2 model; -EBUSY: the ITS is disabled). Takes its_lock.
    """
    its = vgic_its_get(kvm)
    if its is None:
        return -ENODEV
    async with its.its_lock:
        ret = await vgic_its_trigger_msi(kvm, its, devid, eventid)
    if ret < 0:
        return ret
    return 0 if ret else 1


# --- commands ---------------------------------------------------------------------------


async def vgic_its_cmd_handle_mapd(kvm: Kvm, its: VgicIts, cmd: ItsCommandWrite) -> int:
    """vgic-its.c: vgic_its_cmd_handle_mapd. Remapping a mapped device first frees it
    (and all its ITTEs); valid=0 only unmaps."""
    if not 0 <= cmd.device_id < 1 << VITS_TYPER_DEVBITS:
        return E_ITS_MAPD_DEVICE_OOR
    if cmd.valid and cmd.size > VITS_TYPER_IDBITS:
        return E_ITS_MAPD_ITTSIZE_OOR
    device = its.devices.get(cmd.device_id)
    if device is not None:
        vgic_its_free_device(kvm, its, device)
    if cmd.valid:
        its.devices[cmd.device_id] = ItsDevice(cmd.device_id, cmd.size)
    return 0


async def vgic_its_cmd_handle_mapc(kvm: Kvm, its: VgicIts, cmd: ItsCommandWrite) -> int:
    """vgic-its.c: vgic_its_cmd_handle_mapc. Map (or remap, retargeting its LPIs) a
    collection to a vCPU; valid=0 frees it."""
    if not 0 <= cmd.target < len(kvm.vcpus):
        return E_ITS_MAPC_PROCNUM_OOR
    if not cmd.valid:
        vgic_its_free_collection(its, cmd.collection)
        return 0
    coll = its.collections.get(cmd.collection)
    if coll is None:
        if not 0 <= cmd.collection < 1 << 16:
            return E_ITS_MAPC_COLLECTION_OOR
        its.collections[cmd.collection] = ItsCollection(cmd.collection, cmd.target)
    else:
        coll.target_addr = cmd.target
        await update_affinity_collection(its, coll)
    return 0


async def vgic_its_cmd_handle_mapi(kvm: Kvm, its: VgicIts, cmd: ItsCommandWrite) -> int:
    """vgic-its.c: vgic_its_cmd_handle_mapi (MAPTI and MAPI). Check device, EventID and
    pINTID; an existing mapping is left alone (UNPREDICTABLE); allocate the collection
    (unmapped) if new, the ITTE, and the LPI (vgic_add_lpi, targeting the collection's
    vCPU if mapped)."""
    device = its.devices.get(cmd.device_id)
    if device is None:
        return E_ITS_MAPTI_UNMAPPED_DEVICE
    if not 0 <= cmd.event_id < 1 << device.num_eventid_bits:
        return E_ITS_MAPTI_ID_OOR
    lpi_nr = cmd.intid if cmd.cmd == "MAPTI" else cmd.event_id
    if not LPI_MIN <= lpi_nr < 1 << INTERRUPT_ID_BITS_ITS:
        return E_ITS_MAPTI_PHYSICALID_OOR
    if cmd.event_id in device.itt:
        return 0
    coll = its.collections.get(cmd.collection)
    if coll is None:
        if not 0 <= cmd.collection < 1 << 16:
            return E_ITS_MAPC_COLLECTION_OOR
        coll = its.collections[cmd.collection] = ItsCollection(cmd.collection)
    ite = device.itt[cmd.event_id] = ItsIte(cmd.event_id, coll)
    target = coll.target_addr if its_is_collection_mapped(coll) else None
    ite.irq = await vgic_add_lpi(kvm, lpi_nr, target)
    return 0


async def vgic_its_cmd_handle_movi(kvm: Kvm, its: VgicIts, cmd: ItsCommandWrite) -> int:
    """vgic-its.c: vgic_its_cmd_handle_movi. Move an ITTE to another mapped collection and
    retarget its LPI (update_affinity: no kick, prune migrates a queued one)."""
    ite = find_ite(its, cmd.device_id, cmd.event_id)
    if ite is None:
        return E_ITS_MOVI_UNMAPPED_INTERRUPT
    if not its_is_collection_mapped(ite.collection):
        return E_ITS_MOVI_UNMAPPED_COLLECTION
    coll = its.collections.get(cmd.collection)
    if coll is None or not its_is_collection_mapped(coll):
        return E_ITS_MOVI_UNMAPPED_COLLECTION
    ite.collection = coll
    if ite.irq is not None:
        kvm.coverage["its.movi-queued"] += ite.irq.vcpu is not None
        await update_affinity(ite.irq, coll.target_addr)
    return 0


async def vgic_its_cmd_handle_discard(kvm: Kvm, its: VgicIts, cmd: ItsCommandWrite) -> int:
    """vgic-its.c: vgic_its_cmd_handle_discard. Free the ITTE; its pending state is not
    cleared ("we don't bother"): a queued LPI stays on its ap_list, which keeps it alive
    until prune drops it."""
    device = its.devices.get(cmd.device_id)
    ite = device.itt.get(cmd.event_id) if device is not None else None
    if device is None or ite is None or not its_is_collection_mapped(ite.collection):
        return E_ITS_DISCARD_UNMAPPED_INTERRUPT
    kvm.coverage["its.discard-queued"] += ite.irq is not None and ite.irq.vcpu is not None
    its_free_ite(kvm, device, ite)
    return 0


async def vgic_its_cmd_handle_clear(its: VgicIts, cmd: ItsCommandWrite) -> int:
    """vgic-its.c: vgic_its_cmd_handle_clear. Clear the LPI's pending latch, without its
    irq_lock (as the kernel does: a point) and without dequeuing it."""
    ite = find_ite(its, cmd.device_id, cmd.event_id)
    if ite is None or ite.irq is None:
        return E_ITS_CLEAR_UNMAPPED_INTERRUPT
    await point(f"its.clear.lpi{ite.irq.intid}")
    ite.irq.pending_latch = False
    return 0


async def vgic_its_cmd_handle_inv(kvm: Kvm, its: VgicIts, cmd: ItsCommandWrite) -> int:
    """vgic-its.c: vgic_its_cmd_handle_inv -> vgic_its_inv_lpi: re-read one LPI's
    configuration (update_lpi_config with no vCPU filter)."""
    ite = find_ite(its, cmd.device_id, cmd.event_id)
    if ite is None or ite.irq is None:
        return E_ITS_INV_UNMAPPED_INTERRUPT
    await update_lpi_config(kvm, ite.irq, None)
    return 0


async def vgic_its_invall(kvm: Kvm, vcpu_id: int) -> None:
    """vgic-its.c: vgic_its_invall. Snapshot the LPIs targeting ``vcpu_id``
    (vgic_copy_lpi_list, under the lpi_xa lock), then re-read each one's configuration."""
    async with kvm.dist.lpi_xa_lock:
        intids = sorted(i for i, irq in kvm.dist.lpi_xa.items() if irq.target_vcpu == vcpu_id)
    for intid in intids:
        irq = kvm.vgic_get_irq(None, intid)
        if irq is not None:
            await update_lpi_config(kvm, irq, vcpu_id)


async def vgic_its_cmd_handle_invall(kvm: Kvm, its: VgicIts, cmd: ItsCommandWrite) -> int:
    """vgic-its.c: vgic_its_cmd_handle_invall: vgic_its_invall for the collection's vCPU."""
    coll = its.collections.get(cmd.collection)
    if coll is None or coll.target_addr is None:
        return E_ITS_INVALL_UNMAPPED_COLLECTION
    await vgic_its_invall(kvm, coll.target_addr)
    return 0


async def vgic_its_cmd_handle_int(kvm: Kvm, its: VgicIts, cmd: ItsCommandWrite) -> int:
    """vgic-its.c: vgic_its_cmd_handle_int: the command form of an MSI."""
    return await vgic_its_trigger_msi(kvm, its, cmd.device_id, cmd.event_id)


async def vgic_its_handle_command(kvm: Kvm, its: VgicIts, cmd: ItsCommandWrite) -> int:
    """vgic-its.c: vgic_its_handle_command, under its_lock (cmd_lock held by the caller)."""
    async with its.its_lock:
        if cmd.cmd == "MAPD":
            return await vgic_its_cmd_handle_mapd(kvm, its, cmd)
        if cmd.cmd == "MAPC":
            return await vgic_its_cmd_handle_mapc(kvm, its, cmd)
        if cmd.cmd in ("MAPTI", "MAPI"):
            return await vgic_its_cmd_handle_mapi(kvm, its, cmd)
        if cmd.cmd == "MOVI":
            return await vgic_its_cmd_handle_movi(kvm, its, cmd)
        if cmd.cmd == "DISCARD":
            return await vgic_its_cmd_handle_discard(kvm, its, cmd)
        if cmd.cmd == "CLEAR":
            return await vgic_its_cmd_handle_clear(its, cmd)
        if cmd.cmd == "INT":
            return await vgic_its_cmd_handle_int(kvm, its, cmd)
        if cmd.cmd == "INV":
            return await vgic_its_cmd_handle_inv(kvm, its, cmd)
        if cmd.cmd == "INVALL":
            return await vgic_its_cmd_handle_invall(kvm, its, cmd)
        return 0  # SYNC: "we are in sync all of the time"


async def vgic_mmio_write_its_cwriter(kvm: Kvm, write: ItsCommandWrite) -> int:
    """vgic-its.c: vgic_mmio_write_its_cwriter -> vgic_its_process_commands, for a queue
    holding the one command ``write`` carries. Under cmd_lock; commands run only while
    the ITS is enabled; each command's return value is discarded by the kernel (kept in
    ``cmd_log`` here). Returns 0 (a write)."""
    its = vgic_its_get(kvm)
    if its is None:
        return 0
    async with its.cmd_lock:
        if its.enabled:
            ret = await vgic_its_handle_command(kvm, its, write)
            its.cmd_log.append((write.cmd, ret))
    return 0
