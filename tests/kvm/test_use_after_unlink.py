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


def test_the_end_of_run_checks_see_the_live_lpis():
    """all_irqs walks dist->lpi_xa: an LPI whose irq->vcpu names a vCPU whose ap_list lacks
    it is an ap-list-consistency violation (the walk used to skip every LPI)."""
    from vgic_actors.checks.final import all_irqs, ap_list_violations

    async def body(kvm):
        lpi = _new_irq(8192, 0)
        lpi.refcount, lpi.vcpu = 1, 0
        kvm.dist.lpi_xa[8192] = lpi

    kvm = drive(VmConfig(nr_vcpus=1), body)
    assert [i.intid for i in all_irqs(kvm)][-1] == 8192
    assert [v.message for v in ap_list_violations(kvm)] == [
        "LPI 8192 has irq->vcpu = 0 but is on no ap_list"]


def test_prune_migrating_an_entry_that_left_the_list_is_a_finding():
    """prune re-checks only the oracle after re-locking, as the kernel does; if the entry
    left this vCPU's list meanwhile (here: unlinked as prune re-takes its irq_lock, as
    vgic_flush_pending_lpis can from another thread), list_del would touch an unlinked
    entry: reported, and nothing moved (the model used to skip it silently)."""
    from vgic_actors.kvm.vgic import vgic_prune_ap_list

    class UnlinkOnAcquire:
        def __init__(self, lock, vcpu, irq):
            self.lock, self.vcpu, self.irq = lock, vcpu, irq

        async def acquire(self):
            if self.irq in self.vcpu.ap_list:
                self.vcpu.ap_list.remove(self.irq)
                self.irq.vcpu = None
            await self.lock.acquire()

        def release(self):
            self.lock.release()

    async def body(kvm):
        vcpu0 = kvm.vcpus[0]
        spi = kvm.dist.spis[0]
        spi.enabled, spi.pending_latch, spi.target_vcpu, spi.vcpu = True, True, 1, 0
        vcpu0.ap_list.append(spi)
        spi.lock = UnlinkOnAcquire(spi.lock, vcpu0, spi)
        await vgic_prune_ap_list(kvm, vcpu0)

    kvm = drive(VmConfig(nr_vcpus=2), body)
    assert kvm.vcpus[1].ap_list == []
    assert kvm.stale_touches == ["vgic_prune_ap_list's migration (list_del) followed SPI 32 "
                                 "though it is no longer on vcpu0's ap_list"]


def test_the_step_monitor_reports_a_stale_touch_with_its_step():
    """irq-use-after-unlink is judged at the kernel event after it was recorded."""
    from vgic_actors.checks.monitor import StepMonitor
    from vgic_actors.events import IrqPruned

    kvm = _walk(last_linked=False, eoicount=1)
    monitor = StepMonitor(kvm)
    monitor(IrqPruned(step=7, vt=7, actor="pcpu0", vcpu=0, intid=32))
    [v] = [v for v in monitor.violations() if v.invariant == "irq-use-after-unlink"]
    assert v.message.endswith("(first at step 7)") and "SPI 33" in v.message
