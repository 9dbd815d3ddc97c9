"""The use-after-unlink detector: no safety net where the kernel has none (last_lr_irq's
EOIcount walk, prune's migration), and a finding where the kernel would follow a stale
pointer (irq-use-after-unlink)."""

from vgic_actors.checks.final import stale_touch_violations
from vgic_actors.kvm.vgic import vgic_fold_lr_state
from vgic_actors.kvm.vm import VmConfig, _new_irq

from .test_vgic_paths import drive


def _walk(last_linked: bool, eoicount: int):
    """vCPU0 holds SPI 32 active on its ap_list; last_lr_irq names SPI 33, on the list or
    not; the exit carries ``eoicount`` deactivations to replay."""
    async def body(kvm):
        vcpu = kvm.vcpus[0]
        spi32, spi33 = kvm.dist.spis[0], kvm.dist.spis[1]
        spi32.active, spi32.vcpu = True, 0
        vcpu.ap_list[:] = [spi33, spi32] if last_linked else [spi32]
        spi33.vcpu = 0 if last_linked else None
        spi33.pending_latch = spi33.enabled = last_linked
        vcpu.last_lr_irq = spi33
        vcpu.vgic_hcr.eoicount = eoicount
        await vgic_fold_lr_state(kvm, vcpu)

    return drive(VmConfig(nr_vcpus=1), body)


def test_the_walk_continues_after_a_linked_last_lr_irq():
    """The kernel's case: the entry after last_lr_irq is deactivated, nothing reported."""
    kvm = _walk(last_linked=True, eoicount=1)
    assert not kvm.dist.spis[0].active and kvm.stale_touches == []


def test_an_unlinked_last_lr_irq_is_a_finding_not_a_walk_from_the_head():
    """list_for_each_entry_continue from an unlinked entry follows a poisoned link: the
    model reports it (it used to restart silently from the head and deactivate SPI 32)."""
    kvm = _walk(last_linked=False, eoicount=1)
    assert kvm.dist.spis[0].active
    [v] = stale_touch_violations(kvm)
    assert v.invariant == "irq-use-after-unlink" and v.kind == "safety"
    assert "last_lr_irq" in v.message and "SPI 33" in v.message


def test_an_unlinked_last_lr_irq_with_nothing_to_replay_is_harmless():
    """EOIcount 0: the loop breaks before following the poisoned link."""
    assert _walk(last_linked=False, eoicount=0).stale_touches == []


def test_a_freed_lpi_as_last_lr_irq_is_read_even_with_nothing_to_replay():
    """A freed LPI is read for its next link whatever EOIcount says (KASAN's
    use-after-free: what "Take a refcount on IRQs referenced by last_lr_irq" fixes)."""
    async def body(kvm):
        vcpu = kvm.vcpus[0]
        lpi = _new_irq(8192, 0)
        lpi.refcount = 1
        kvm.dist.lpi_xa[8192] = lpi
        kvm.vgic_put_irq(lpi)
        assert lpi.freed and 8192 not in kvm.dist.lpi_xa
        vcpu.last_lr_irq = lpi
        await vgic_fold_lr_state(kvm, vcpu)

    kvm = drive(VmConfig(nr_vcpus=1), body)
    assert kvm.stale_touches == ["vgic_v3_fold_lr_state's EOIcount walk (last_lr_irq) "
                                 "followed LPI 8192 though its last reference was put (freed)"]


def test_putting_a_freed_lpi_again_is_a_finding():
    """refcount_t's "underflow; use-after-free": a second put of a freed LPI."""
    async def body(kvm):
        lpi = _new_irq(8193, 0)
        lpi.refcount = 1
        kvm.vgic_put_irq(lpi)
        kvm.vgic_put_irq(lpi)

    kvm = drive(VmConfig(nr_vcpus=1), body)
    assert len(kvm.stale_touches) == 1 and "LPI 8193" in kvm.stale_touches[0]
