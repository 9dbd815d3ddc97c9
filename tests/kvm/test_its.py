"""The ITS and LPIs: commands, the property table, MSIs, and LPIs through queue/flush/fold.

Direct tests run ITS commands from one test actor; the end-to-end tests have guests map
and acknowledge LPIs (peer-tests.md B4 its-trigger, A9, S12), with a device actor
signalling MSIs through vgic_its_inject_msi (KVM_SIGNAL_MSI's backend).
"""

import io

from vgic_actors.arch import GicVersion
from vgic_actors.events import EoicountReplayed, IrqQueued, LrFolded, decode_lines
from vgic_actors.guest import (
    Ack,
    Eoir,
    GuestProgram,
    ItsCommand,
    SetGroupEnable,
    SetLpiConfig,
    SetPmr,
    Store,
    WaitFor,
)
from vgic_actors.kvm import its
from vgic_actors.kvm.guest_api import ItsCommandWrite, lpi_prop_key
from vgic_actors.kvm.its import vgic_its_inject_msi, vgic_mmio_write_its_cwriter
from vgic_actors.kvm.machine import start_vm
from vgic_actors.kvm.vgic import vgic_prune_ap_list
from vgic_actors.kvm.vm import KVM_REQ_IRQ_PENDING, VmConfig
from vgic_actors.runtime import Outcome, make_strategy, point, run, spin_yield

from .test_vgic_paths import drive, pending_reqs

SETUP = [SetGroupEnable(), SetPmr(0xF8)]


def cmd(kvm, name, **fields):
    """Issue one ITS command from vCPU0 (GITS_CWRITER write)."""
    return vgic_mmio_write_its_cwriter(kvm, ItsCommandWrite(0, name, **fields))


async def map_lpi(kvm, *, dev=2, event=20, intid=8195, coll=3, target=1, prop=0xA1):
    """MAPD + MAPC + MAPTI with the LPI's property byte set first (enabled, priority 0xa0)."""
    kvm.guest_memory[lpi_prop_key(intid)] = prop
    await cmd(kvm, "MAPD", device_id=dev, size=8)
    await cmd(kvm, "MAPC", collection=coll, target=target)
    await cmd(kvm, "MAPTI", device_id=dev, event_id=event, intid=intid, collection=coll)


def test_mapti_allocates_the_lpi_with_its_property_table_config():
    """vgic_add_lpi: edge, Group 1, targeting the collection's vCPU; update_lpi_config reads
    priority (bits 7:2) and enable from guest memory; the ITTE holds one reference."""
    async def body(kvm):
        await map_lpi(kvm, prop=0x85)

    kvm = drive(VmConfig(), body)
    irq = kvm.vgic_get_irq(None, 8195)
    assert irq is not None and irq.target_vcpu == 1 and irq.group == 1
    assert irq.priority == 0x84 and irq.enabled and irq.refcount == 1
    assert kvm.its.cmd_log == [("MAPD", 0), ("MAPC", 0), ("MAPTI", 0)]


def test_command_errors_are_the_kernels():
    """Unmapped device, EventID / pINTID out of range, bad target, unmapped interrupt or
    collection: each command returns its E_ITS_* code and changes nothing."""
    async def body(kvm):
        await cmd(kvm, "MAPTI", device_id=9, event_id=0, intid=8192)
        await cmd(kvm, "MAPD", device_id=1, size=2)
        await cmd(kvm, "MAPTI", device_id=1, event_id=4, intid=8192)
        await cmd(kvm, "MAPTI", device_id=1, event_id=1, intid=100)
        await cmd(kvm, "MAPC", collection=0, target=5)
        await cmd(kvm, "INV", device_id=1, event_id=0)
        await cmd(kvm, "INVALL", collection=7)
        await cmd(kvm, "MAPD", device_id=1, size=17)
        await cmd(kvm, "MAPI", device_id=1, event_id=1, collection=0)  # LPI 1: out of range
        await cmd(kvm, "MOVI", device_id=1, event_id=1, collection=0)

    kvm = drive(VmConfig(), body)
    assert [ret for _, ret in kvm.its.cmd_log] == [
        its.E_ITS_MAPTI_UNMAPPED_DEVICE, 0, its.E_ITS_MAPTI_ID_OOR,
        its.E_ITS_MAPTI_PHYSICALID_OOR, its.E_ITS_MAPC_PROCNUM_OOR,
        its.E_ITS_INV_UNMAPPED_INTERRUPT, its.E_ITS_INVALL_UNMAPPED_COLLECTION,
        its.E_ITS_MAPD_ITTSIZE_OOR, its.E_ITS_MAPTI_PHYSICALID_OOR,
        its.E_ITS_MOVI_UNMAPPED_INTERRUPT,
    ]
    assert kvm.dist.lpi_xa == {}


def test_inject_msi_returns_what_kvm_signal_msi_returns():
    """1: delivered (the LPI is queued on its target, with a list reference); 0: the guest's
    mapping blocks it; -ENODEV: no ITS (GICv2 model)."""
    rets = []

    async def body(kvm):
        await map_lpi(kvm)
        rets.append(await vgic_its_inject_msi(kvm, 2, 20))
        rets.append(await vgic_its_inject_msi(kvm, 2, 21))
        rets.append(await vgic_its_inject_msi(kvm, 5, 20))

    kvm = drive(VmConfig(), body)
    assert rets == [1, 0, 0]
    irq = kvm.vgic_get_irq(None, 8195)
    assert irq.pending_latch and irq.vcpu == 1 and irq.refcount == 2
    assert [i.intid for i in kvm.vcpus[1].ap_list] == [8195]

    async def v2(kvm):
        rets.append(await vgic_its_inject_msi(kvm, 2, 20))

    drive(VmConfig(gic_model=GicVersion.V2), v2)
    assert rets[-1] == -its.ENODEV


def test_disabled_lpi_latches_and_is_queued_by_inv():
    """A disabled LPI's MSI only latches; enabling it in the table does nothing until INV,
    which queues it and kicks its target; CLEAR drops a latch without dequeuing."""
    async def body(kvm):
        await map_lpi(kvm, prop=0xA0)  # disabled
        await vgic_its_inject_msi(kvm, 2, 20)
        assert kvm.vcpus[1].ap_list == []
        kvm.guest_memory[lpi_prop_key(8195)] = 0xA1
        await vgic_its_inject_msi(kvm, 2, 20)
        assert kvm.vcpus[1].ap_list == []  # no INV yet: KVM's cached copy is still disabled
        for vcpu in kvm.vcpus:
            vcpu.core.requests.bits = 0
        await cmd(kvm, "INV", device_id=2, event_id=20)
        assert pending_reqs(kvm) == [0, 1 << KVM_REQ_IRQ_PENDING]
        await cmd(kvm, "CLEAR", device_id=2, event_id=20)

    kvm = drive(VmConfig(), body)
    irq = kvm.vgic_get_irq(None, 8195)
    assert irq.enabled and not irq.pending_latch and irq.vcpu == 1


def test_discard_of_a_queued_lpi_keeps_it_alive_until_prune():
    """DISCARD frees the ITTE but leaves the pending LPI on its ap_list (the list's reference
    keeps it in lpi_xa); once it goes nowhere, prune drops the last reference."""
    async def body(kvm):
        await map_lpi(kvm)
        await vgic_its_inject_msi(kvm, 2, 20)
        await cmd(kvm, "DISCARD", device_id=2, event_id=20)
        irq = kvm.vgic_get_irq(None, 8195)
        assert irq is not None and irq.refcount == 1 and irq.vcpu == 1
        assert await vgic_its_inject_msi(kvm, 2, 20) == 0
        irq.pending_latch = False
        await vgic_prune_ap_list(kvm, kvm.vcpus[1])

    kvm = drive(VmConfig(), body)
    assert kvm.dist.lpi_xa == {} and kvm.vcpus[1].ap_list == []


def test_movi_retargets_without_a_kick_and_prune_migrates():
    """MOVI -> update_affinity: only target_vcpu changes; the owner's prune moves it."""
    async def body(kvm):
        await map_lpi(kvm)
        await cmd(kvm, "MAPC", collection=4, target=0)
        await vgic_its_inject_msi(kvm, 2, 20)
        for vcpu in kvm.vcpus:
            vcpu.core.requests.bits = 0
        await cmd(kvm, "MOVI", device_id=2, event_id=20, collection=4)
        assert pending_reqs(kvm) == [0, 0] and kvm.vgic_get_irq(None, 8195).vcpu == 1
        await vgic_prune_ap_list(kvm, kvm.vcpus[1])

    kvm = drive(VmConfig(), body)
    assert [i.intid for i in kvm.vcpus[0].ap_list] == [8195]
    assert pending_reqs(kvm) == [1 << KVM_REQ_IRQ_PENDING, 0]


# --- end to end -----------------------------------------------------------------------------


def run_vm(config, guests, *, seed, device=None, strategy="pct", log=None, max_steps=20_000):
    """Start the VM (and a ``device`` actor given the machine, if any) and run it."""
    box = {}

    def setup(sched):
        machine = box["m"] = start_vm(sched, config, guests)
        if device is not None:
            sched.spawn("device", lambda: device(machine))

    result = run(setup, make_strategy(strategy, seed, depth=3, k=300), seed=seed,
                 max_steps=max_steps, log=log)
    return result, box["m"]


def map_ops(intid=8195, dev=2, event=20, coll=3, target=1):
    return [
        SetLpiConfig(intid, True, 0xA0),
        ItsCommand("MAPD", device_id=dev, size=8),
        ItsCommand("MAPC", collection=coll, target=target),
        ItsCommand("MAPTI", device_id=dev, event_id=event, intid=intid, collection=coll),
    ]


def test_msi_from_a_device_is_acked_and_eoied_by_its_target_under_pct():
    """A9-like: vCPU0 maps device 2 event 20 to LPI 8195 on vCPU1; a device actor signals
    the MSI (KVM_SIGNAL_MSI returns 1) and an unmapped one (returns 0); vCPU1 acknowledges
    and EOIs the LPI exactly once and it leaves every ap_list, for 40 PCT seeds."""
    for seed in range(40):
        rets: list[int] = []

        async def device(machine, rets=rets):
            while machine.memory.get("mapped") != 1:
                spin_yield()
                await point("device.wait")
            rets.append(await vgic_its_inject_msi(machine.kvm, 2, 20))
            rets.append(await vgic_its_inject_msi(machine.kvm, 2, 21))

        guests = [
            GuestProgram("vcpu0", [*SETUP, *map_ops(), Store("mapped", 1)]),
            GuestProgram("vcpu1", [*SETUP, Ack(expect=8195), Eoir()]),
        ]
        result, machine = run_vm(VmConfig(), guests, seed=seed, device=device)
        assert result.outcome is Outcome.QUIESCENT, (seed, result.finding)
        assert [g.failures for g in machine.guests] == [[], []], seed
        assert rets == [1, 0] and machine.guests[1].acked == [8195], seed
        irq = machine.kvm.vgic_get_irq(None, 8195)
        assert irq.vcpu is None and not irq.active and not irq.pending_latch, seed
        assert irq.refcount == 1  # the ITTE's


def its_trigger_guests():
    """B4 its-trigger, on two vCPUs: vCPU0 drives the ITS, vCPU1 receives LPI 8195."""
    vcpu0 = GuestProgram("vcpu0", [
        *SETUP, *map_ops(),
        ItsCommand("INT", device_id=2, event_id=20), WaitFor("acked", 1),
        SetLpiConfig(8195, False, 0xA0), ItsCommand("INV", device_id=2, event_id=20),
        ItsCommand("INT", device_id=2, event_id=20), Store("disabled_int", 1),
        SetLpiConfig(8195, True, 0xA0), ItsCommand("INVALL", collection=3),
        WaitFor("acked", 2),
        ItsCommand("MAPD", device_id=2, valid=False), ItsCommand("INT", device_id=2, event_id=20),
    ])
    vcpu1 = GuestProgram("vcpu1", [
        *SETUP, Ack(expect=8195), Eoir(), Store("acked", 1),
        Ack(expect=8195), Eoir(), Store("acked", 2),
    ])
    return [vcpu0, vcpu1]


def test_its_trigger_int_inv_invall_and_unmapped_device():
    """B4 its-trigger: INT delivers once; disabled in the table + INV, INT only latches; re-
    enabled + INVALL delivers the latched LPI; after MAPD valid=0, INT is refused."""
    for seed in range(20):
        log = io.BytesIO()
        result, machine = run_vm(VmConfig(), its_trigger_guests(), seed=seed, log=log)
        assert result.outcome is Outcome.QUIESCENT, (seed, result.finding)
        assert machine.guests[1].acked == [8195, 8195] and machine.guests[1].failures == []
        events = list(decode_lines(log.getvalue().splitlines()))
        assert len([e for e in events if isinstance(e, IrqQueued) and e.intid == 8195]) == 2
        assert machine.kvm.its.cmd_log[-1] == ("INT", its.E_ITS_INT_UNMAPPED_INTERRUPT)
        assert machine.kvm.dist.lpi_xa == {}  # unmapped and off every ap_list: freed


def s12_guests():
    """peer-tests.md S12: one LR, EOImode 0. LPI 8192 is acknowledged (Active in the LR);
    LPI 8193 (higher priority) arrives; 8193 is acked and EOIed, then 8192 is EOIed while
    it is in no LR."""
    ops = [
        *SETUP, SetLpiConfig(8192, True, 0xA0), SetLpiConfig(8193, True, 0x80),
        ItsCommand("MAPD", device_id=0, size=4), ItsCommand("MAPC", collection=0, target=0),
        ItsCommand("MAPTI", device_id=0, event_id=0, intid=8192, collection=0),
        ItsCommand("MAPTI", device_id=0, event_id=1, intid=8193, collection=0),
        ItsCommand("INT", device_id=0, event_id=0), Ack(expect=8192),
        ItsCommand("INT", device_id=0, event_id=1), Ack(expect=8193),
        Eoir(8193), Eoir(8192),
    ]
    return [GuestProgram("vcpu0", ops)]


def test_s12_vlpi_overflow_eoimode0_is_not_stuck():
    """merged: KVM drops the vLPI's active bit at fold, so 8192 leaves the ap_list and 8193
    gets the LR; the EOIR of 8192 (in no LR) only drops priority and moves no EOIcount;
    everything ends inactive with the APRs clear."""
    for seed in range(20):
        log = io.BytesIO()
        result, machine = run_vm(VmConfig(nr_vcpus=1, nr_lr=1), s12_guests(), seed=seed,
                                 log=log)
        assert result.outcome is Outcome.QUIESCENT, (seed, result.finding)
        guest = machine.guests[0]
        assert guest.failures == [] and guest.acked == [8192, 8193], seed
        kvm = machine.kvm
        for intid in (8192, 8193):
            irq = kvm.vgic_get_irq(None, intid)
            assert not irq.active and irq.vcpu is None, (seed, intid)
        state = kvm.vcpus[0].cpuif.state
        assert not any(state.ap0r) and not any(state.ap1r)
        events = list(decode_lines(log.getvalue().splitlines()))
        assert not any(isinstance(e, EoicountReplayed) for e in events)
        assert any(isinstance(e, LrFolded) and e.intid == 8192 and e.state == "ACTIVE"
                   for e in events)  # folded while Active: the drop happened in KVM


def test_s12_without_the_lpi_active_drop_the_lpi_sticks():
    """Negative control (pre-series: no LPI active drop at fold): 8192 stays Active in KVM
    outside the LR, its EOIR is lost, and the run never ends cleanly."""
    result, machine = run_vm(VmConfig(nr_vcpus=1, nr_lr=1, variant="pre-series"),
                             s12_guests(), seed=0, max_steps=5_000)
    irq = machine.kvm.vgic_get_irq(None, 8192)
    assert result.outcome is not Outcome.QUIESCENT or irq.active
