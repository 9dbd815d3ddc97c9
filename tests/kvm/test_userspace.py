"""The VMM's ioctls (kvm/userspace.py): validation and errno branches, driven directly on a
VM with no guest running (as tests/kvm/test_vgic_paths.py does)."""

import errno

import pytest

from vgic_actors.kvm.irq import IrqConfig
from vgic_actors.kvm.irq_routing import RoutingEntry, kvm_notify_acked_irq
from vgic_actors.kvm.phys_gic import kvm_vgic_map_phys_irq, kvm_vgic_set_owner
from vgic_actors.kvm.userspace import (
    KVM_ARM_IRQ_TYPE_CPU,
    KVM_ARM_IRQ_TYPE_PPI,
    KVM_ARM_IRQ_TYPE_SPI,
    eventfd_write,
    kvm_arm_irq_line_encode,
    kvm_irqfd_assign,
    kvm_send_userspace_msi,
    kvm_set_gsi_routing,
    kvm_vgic_get_level_info,
    kvm_vgic_set_level_info,
    kvm_vm_ioctl_irq_line,
    level_info_attr,
    vgic_uaccess_write,
)
from vgic_actors.kvm.vm import KVM_REQ_SLEEP, VmConfig, build_kvm
from vgic_actors.runtime import Outcome, Replay, run


def drive(config, body, *, in_userspace=True):
    """Build the VM, run ``body(kvm)`` as the only actor, return the VM. The vCPUs are out of
    KVM_RUN unless ``in_userspace`` is False (then the device attributes see them busy)."""
    box = {}

    def setup(sched):
        box["kvm"] = kvm = build_kvm(sched, config)
        for vcpu in kvm.vcpus:
            vcpu.core.pcpu.irqs_disabled = False
            vcpu.in_userspace = in_userspace
        sched.spawn("test", lambda: body(kvm))

    result = run(setup, Replay([]))
    assert result.outcome is Outcome.QUIESCENT, result.finding
    return box["kvm"]


def spi(kvm, intid):
    return kvm.dist.spis[intid - 32]


def line(irq_type, num, vcpu=0):
    return kvm_arm_irq_line_encode(irq_type, vcpu, num)


def test_irq_line_validation_matches_kvm_vm_ioctl_irq_line():
    """CPU type: ENXIO; PPI outside 16..31 or unknown vCPU: EINVAL; SPI below 32 or beyond
    the VM (incl. 1020, 1024, 5120): EINVAL; nothing reaches an ap_list."""
    out = {}

    async def body(kvm):
        cases = {
            "cpu": line(KVM_ARM_IRQ_TYPE_CPU, 0),
            "ppi15": line(KVM_ARM_IRQ_TYPE_PPI, 15),
            "ppi32": line(KVM_ARM_IRQ_TYPE_PPI, 32),
            "ppi_vcpu2": line(KVM_ARM_IRQ_TYPE_PPI, 20, vcpu=2),
            "ppi_vcpu256": line(KVM_ARM_IRQ_TYPE_PPI, 20, vcpu=256),
            "spi31": line(KVM_ARM_IRQ_TYPE_SPI, 31),
            "spi64": line(KVM_ARM_IRQ_TYPE_SPI, 64),
            "spi1020": line(KVM_ARM_IRQ_TYPE_SPI, 1020),
            "spi1024": line(KVM_ARM_IRQ_TYPE_SPI, 1024),
            "spi5120": line(KVM_ARM_IRQ_TYPE_SPI, 5120),
            "type3": 3 << 24 | 40,
        }
        for name, irq in cases.items():
            out[name] = await kvm_vm_ioctl_irq_line(kvm, irq, True)

    kvm = drive(VmConfig(nr_vcpus=2, nr_spis=32), body)
    assert out == {"cpu": errno.ENXIO, **{k: errno.EINVAL for k in out if k != "cpu"}}
    assert all(not v.ap_list for v in kvm.vcpus)


def test_irq_line_field_width():
    """The INTID field is 16 bits: a VMM cannot even express 0x10000."""
    with pytest.raises(ValueError, match="KVM_ARM_IRQ_NUM_MASK"):
        kvm_arm_irq_line_encode(KVM_ARM_IRQ_TYPE_SPI, 0, 0x10000)


def test_irq_line_delivers_spi_and_ppi():
    """A valid SPI (edge) latches and queues on vCPU0; a PPI goes to the named vCPU."""
    out = []

    async def body(kvm):
        spi(kvm, 33).enabled = True
        kvm.vcpus[1].private_irqs[20].enabled = True
        out.append(await kvm_vm_ioctl_irq_line(kvm, line(KVM_ARM_IRQ_TYPE_SPI, 33), True))
        out.append(await kvm_vm_ioctl_irq_line(kvm, line(KVM_ARM_IRQ_TYPE_PPI, 20, 1), True))

    kvm = drive(VmConfig(), body)
    assert out == [0, 0]
    assert spi(kvm, 33).pending_latch and [i.intid for i in kvm.vcpus[0].ap_list] == [33]
    assert kvm.vcpus[1].private_irqs[20].line_level
    assert [i.intid for i in kvm.vcpus[1].ap_list] == [20]


def test_irq_line_to_an_owned_ppi_is_accepted_and_ignored():
    """vgic_validate_injection: userspace (owner None) cannot move a line the arch timer owns."""
    out = []

    async def body(kvm):
        assert await kvm_vgic_set_owner(kvm, 0, 27, "arch_timer") == 0
        assert await kvm_vgic_set_owner(kvm, 0, 27, "pmu") == errno.EBUSY
        out.append(await kvm_vm_ioctl_irq_line(kvm, line(KVM_ARM_IRQ_TYPE_PPI, 27), True))

    kvm = drive(VmConfig(), body)
    assert out == [0] and not kvm.vcpus[0].private_irqs[27].line_level


def test_level_info_accepts_up_to_1023_and_rejects_above():
    """peer-tests A3: LEVEL_INFO EINVAL above 1023 (the attr spills into the info field),
    silently accepted up to 1023; an unaligned INTID or a GICv2 model is refused."""
    out = {}

    async def body(kvm):
        for intid in (1020, 1023, 1024, 1120, 5120, 0xFFFFFFFF):
            err, val = await kvm_vgic_get_level_info(kvm, level_info_attr(0, intid))
            out[intid] = err or await kvm_vgic_set_level_info(kvm, level_info_attr(0, intid),
                                                              val | 1 << intid % 32)
        out["unaligned"] = await kvm_vgic_set_level_info(kvm, (0 << 32) | 33, 1)
        out["vcpu"] = await kvm_vgic_set_level_info(kvm, level_info_attr(5, 32), 1)

    drive(VmConfig(), body)
    assert out == {1020: 0, 1023: 0, 1024: errno.EINVAL, 1120: errno.EINVAL,
                   5120: errno.EINVAL, 0xFFFFFFFF: errno.EINVAL,
                   "unaligned": errno.EINVAL, "vcpu": errno.EINVAL}

    v2 = []
    drive(VmConfig(gic_model=VmConfig().gic_model.V2, host_tdir_cap=False),
          lambda kvm: _append(v2, kvm_vgic_set_level_info(kvm, level_info_attr(0, 32), 1)))
    assert v2 == [errno.ENXIO]


async def _append(out, coro):
    out.append(await coro)


def test_level_info_sets_line_level_and_queues():
    """Setting a level bit raises line_level whatever the trigger and queues the irq; reading
    back reports only level-triggered lines."""
    out = []

    async def body(kvm):
        spi(kvm, 33).enabled = True
        spi(kvm, 33).config = IrqConfig.LEVEL
        out.append(await kvm_vgic_set_level_info(kvm, level_info_attr(0, 32), 0b11))
        out.append(await kvm_vgic_get_level_info(kvm, level_info_attr(0, 32)))

    kvm = drive(VmConfig(), body)
    assert out == [0, (0, 0b10)]  # SPI 32 is edge: its line is set but not reported
    assert spi(kvm, 32).line_level and spi(kvm, 33).line_level
    assert [i.intid for i in kvm.vcpus[0].ap_list] == [33]


def test_device_attributes_need_every_vcpu_out_of_kvm_run():
    """kvm_trylock_all_vcpus: EBUSY while a vCPU is inside KVM_RUN; KVM_IRQ_LINE is not affected."""
    out = []

    async def body(kvm):
        out.append(await kvm_vgic_set_level_info(kvm, level_info_attr(0, 32), 1))
        out.append(await vgic_uaccess_write(kvm, 0, "ISPENDR", 32))
        out.append(await kvm_vm_ioctl_irq_line(kvm, line(KVM_ARM_IRQ_TYPE_SPI, 32), True))

    drive(VmConfig(), body, in_userspace=False)
    assert out == [errno.EBUSY, errno.EBUSY, 0]


def test_userspace_isactiver_does_not_halt_and_skips_hw_irqs():
    """vgic_mmio_uaccess_write_sactive: no halt (no pause, no SLEEP request), a SW irq becomes
    active and is queued, a HW-mapped one is left alone (no physical active either)."""
    async def body(kvm):
        assert await kvm_vgic_map_phys_irq(kvm, None, 99, 34) == 0
        assert await vgic_uaccess_write(kvm, 0, "ISACTIVER", 33) == 0
        assert await vgic_uaccess_write(kvm, 0, "ISACTIVER", 34) == 0

    kvm = drive(VmConfig(), body)
    assert spi(kvm, 33).active and [i.intid for i in kvm.vcpus[0].ap_list] == [33]
    assert not spi(kvm, 34).active and not kvm.phys.line(99).active
    assert not any(v.pause for v in kvm.vcpus)
    assert not any(v.core.requests.peek() & (1 << (KVM_REQ_SLEEP & 0xFF)) for v in kvm.vcpus)


def test_userspace_ispendr_latches_without_physical_active():
    """__set_pending(is_user): pending latch and queue; a HW irq's physical active state is not
    touched (the guest's write would set it); beyond the VM's INTIDs: ENXIO."""
    out = []

    async def body(kvm):
        spi(kvm, 34).enabled = True
        await kvm_vgic_map_phys_irq(kvm, None, 99, 34)
        out.append(await vgic_uaccess_write(kvm, 0, "ISPENDR", 34))
        out.append(await vgic_uaccess_write(kvm, 0, "ISPENDR", 64))

    kvm = drive(VmConfig(nr_spis=32), body)
    assert out == [0, errno.ENXIO]
    assert spi(kvm, 34).pending_latch and not kvm.phys.line(99).active


def test_gsi_routing_validation():
    """kvm_set_routing_entry / setup_routing_entry: pin >= 988 and irqchip >= 1 are EINVAL, a
    pin beyond nr_spis is accepted; flags on an irqchip route, a GSI routed twice: EINVAL."""
    out = {}

    async def body(kvm):
        out["pin987"] = await kvm_set_gsi_routing(kvm, [RoutingEntry(gsi=0, pin=987)])
        out["pin988"] = await kvm_set_gsi_routing(kvm, [RoutingEntry(gsi=0, pin=988)])
        out["chip1"] = await kvm_set_gsi_routing(kvm, [RoutingEntry(gsi=0, irqchip=1)])
        out["flags"] = await kvm_set_gsi_routing(kvm, [RoutingEntry(gsi=0, flags=1)])
        out["twice"] = await kvm_set_gsi_routing(
            kvm, [RoutingEntry(gsi=0, pin=1), RoutingEntry(gsi=0, pin=2)])
        out["gsi"] = await kvm_set_gsi_routing(kvm, [RoutingEntry(gsi=4096, pin=1)])

    kvm = drive(VmConfig(), body)
    assert out == {"pin987": 0, "pin988": errno.EINVAL, "chip1": errno.EINVAL,
                   "flags": errno.EINVAL, "twice": errno.EINVAL, "gsi": errno.EINVAL}
    assert kvm.irq_routing.routes == {0: [RoutingEntry(gsi=0, pin=987)]}  # failures keep it


def test_irqfd_on_an_out_of_range_pin_injects_nothing():
    """vgic_irqfd_set_irq: a route to a pin beyond the VM's SPIs is accepted, its irqfd
    injection fails quietly (EINVAL inside the kernel, nothing for the eventfd writer)."""
    async def body(kvm):
        assert await kvm_set_gsi_routing(kvm, [RoutingEntry(gsi=7, pin=100)]) == 0
        assert await kvm_irqfd_assign(kvm, "fd", 7) == 0
        assert await eventfd_write(kvm, "fd") == 0

    kvm = drive(VmConfig(), body)
    assert all(not v.ap_list for v in kvm.vcpus)


def test_irqfd_edge_spi_through_default_routing():
    """Default routing GSI n -> SPI 32+n; an eventfd write latches the edge SPI (level 1 only,
    kvm_arch_set_irq_inatomic); a second irqfd on the same eventfd is EBUSY; a count already
    in the eventfd is injected at assignment."""
    out = []

    async def body(kvm):
        spi(kvm, 35).enabled = True
        spi(kvm, 36).enabled = True
        out.append(await eventfd_write(kvm, "early"))  # before KVM_IRQFD: count kept
        out.append(await kvm_irqfd_assign(kvm, "early", 4))
        out.append(await kvm_irqfd_assign(kvm, "fd", 3))
        out.append(await kvm_irqfd_assign(kvm, "fd", 5))
        out.append(await eventfd_write(kvm, "fd"))

    kvm = drive(VmConfig(), body)
    assert out == [0, 0, 0, errno.EBUSY, 0]
    assert spi(kvm, 35).pending_latch and spi(kvm, 36).pending_latch
    assert sorted(i.intid for i in kvm.vcpus[0].ap_list) == [35, 36]


def test_resampler_ack_lowers_the_line_and_signals_the_resamplefd():
    """irqfd_resampler_ack (via kvm_notify_acked_irq on the SPI's pin): line low, resamplefd
    signalled once; a pin without a resampler notifies nobody."""
    async def body(kvm):
        spi(kvm, 35).config = IrqConfig.LEVEL
        spi(kvm, 35).enabled = True
        assert await kvm_irqfd_assign(kvm, "dev", 3, resamplefd="dev.rs") == 0
        assert await eventfd_write(kvm, "dev") == 0
        assert spi(kvm, 35).line_level  # level 1 only: stays high until the resample
        await kvm_notify_acked_irq(kvm.irq_routing, 0, 4)  # another pin: nothing
        assert spi(kvm, 35).line_level
        await kvm_notify_acked_irq(kvm.irq_routing, 0, 3)

    kvm = drive(VmConfig(), body)
    assert not spi(kvm, 35).line_level
    assert kvm.irq_routing.eventfds["dev.rs"].signals == 1


def test_signal_msi_errors():
    """KVM_SIGNAL_MSI: flags beyond VALID_DEVID or no DeviceID: -EINVAL; GICv2 model (no ITS):
    -ENODEV; an unmapped DeviceID on a GICv3 model: 0 (blocked)."""
    out = []

    async def body(kvm):
        out.append(await kvm_send_userspace_msi(kvm, 1, 2, flags=2))
        out.append(await kvm_send_userspace_msi(kvm, 1, 2, flags=0))
        out.append(await kvm_send_userspace_msi(kvm, 1, 2))

    drive(VmConfig(), body)
    assert out == [-errno.EINVAL, -errno.EINVAL, 0]
    v2 = []
    drive(VmConfig(gic_model=VmConfig().gic_model.V2, host_tdir_cap=False),
          lambda kvm: _append(v2, kvm_send_userspace_msi(kvm, 1, 2)))
    assert v2 == [-errno.ENODEV]
