"""The VM: struct kvm with its vgic_dist, and struct kvm_vcpu with its vgic_cpu.

Lock ranks follow the kernel's order (vgic.c header): config_lock, then the
ap_list_locks (two of them: lower vcpu_id first), then irq_locks.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING, Any

from vgic_actors.arch.cpuif import VirtualCpuInterface
from vgic_actors.arch.intid import LPI_MIN
from vgic_actors.arch.registers import EMPTY_LR, CpuIfConfig, GicVersion, IchHcr, ListRegister
from vgic_actors.arch.switches import ArchSwitches
from vgic_actors.kvm.irq import VgicIrq, default_config
from vgic_actors.kvm.irq_routing import KvmIrqRouting
from vgic_actors.kvm.phys_gic import PhysGic
from vgic_actors.kvm.variants import KernelSwitches, get_variant
from vgic_actors.runtime import (
    DEFAULT_IPI_LATENCY,
    KVM_REQUEST_NO_WAKEUP,
    KVM_REQUEST_WAIT,
    AtomicInt,
    Pcpu,
    Scheduler,
    SpinLock,
    VcpuCore,
    Workqueue,
    name_request,
)

if TYPE_CHECKING:
    from vgic_actors.kvm.its import VgicIts

RANK_CONFIG_LOCK = 10
RANK_ITS_CMD_LOCK = 12  # its->cmd_lock (a mutex in the kernel)
RANK_ITS_LOCK = 14  # its->its_lock (a mutex in the kernel)
RANK_LPI_XA_LOCK = 16  # dist->lpi_xa.xa_lock
RANK_AP_LIST_LOCK = 20
RANK_IRQ_LOCK = 30

IRQ_LOCK_FLAVOUR = "raw_spin_lock_irqsave"
"""irq_lock and ap_list_lock are raw spinlocks taken with IRQs saved and disabled
(raw_spin_lock_irqsave in vgic.c; the plain raw_spin_lock uses, e.g. in the fold, run
with IRQs already off); lpi_xa's lock is xa_lock_irqsave. config_lock and the ITS locks
are mutexes: no context change."""

# arm64 kvm_host.h request numbers: KVM_ARCH_REQ(n) = 8 + n, with flags above bit 8
KVM_REQ_SLEEP = 8 | KVM_REQUEST_WAIT | KVM_REQUEST_NO_WAKEUP
KVM_REQ_IRQ_PENDING = 9
KVM_REQ_VGIC_PROCESS_UPDATE = 8 + 11
name_request(KVM_REQ_SLEEP, "KVM_REQ_SLEEP")  # the events carry these names
name_request(KVM_REQ_IRQ_PENDING, "KVM_REQ_IRQ_PENDING")
name_request(KVM_REQ_VGIC_PROCESS_UPDATE, "KVM_REQ_VGIC_PROCESS_UPDATE")


@dataclass(frozen=True, slots=True)
class VmConfig:
    """What a VM is made of: guest GIC model, sizes, host facts, variant, switches.

    ``gic_model`` is the guest's (kvm->arch.vgic.vgic_model); ``host_gic`` the host's
    (kvm_vgic_global_state.type, and the gicv3_cpuif static key): it, not the guest
    model, picks the fold (vgic.c: vgic_fold_lr_state), the LR and HCR layout
    (vgic_flush_lr_state: vgic_v2/v3_configure_hcr) and the trapped GICV_DIR's
    emulation (vgic-mmio-v2.c: vgic_mmio_write_dir -> vgic_v3/v2_deactivate). A GICv2
    guest runs on either host; a GICv3 guest only on a GICv3 host.
    ``host_tdir_cap``: ARM64_HAS_ICH_HCR_EL2_TDIR (ICH_VTR_EL2.TDS; GICv3 hosts only).
    ``host_common_trap``: the boot parameter kvm-arm.vgic_v3_common_trap=1 (TC in the
    hyp's trap constant on a host that has TDIR; hosts without TDIR get TC anyway).
    ``ipi_latency``: virtual ticks within which an IPI must land (None = unbounded).
    """

    nr_vcpus: int = 2
    nr_lr: int = 4
    nr_spis: int = 32
    gic_model: GicVersion = GicVersion.V3
    host_gic: GicVersion = GicVersion.V3
    host_tdir_cap: bool = True
    host_common_trap: bool = False
    pri_bits: int = 5
    pre_bits: int = 5
    variant: str = "merged"
    # Single KernelSwitches changed on top of the variant (a scenario's `kernel:`, for a
    # negative control): (switch name, value) pairs.
    kernel: tuple[tuple[str, object], ...] = ()
    arch: ArchSwitches = field(default_factory=ArchSwitches)
    timeslice: int = 64
    ipi_latency: int | None = DEFAULT_IPI_LATENCY
    # A long-lived VM's history: edge SPIs put on an ap_list, acknowledged and deactivated
    # since the vGIC was initialised, none left in flight (findings F6, `leaked_active_spis`)
    edge_spis_queued: int = 0

    @property
    def switches(self) -> KernelSwitches:
        """The kernel switches of the named variant, with ``kernel``'s changes."""
        sw = get_variant(self.variant).switches
        changes: dict[str, Any] = dict(self.kernel)  # names and types checked by the loader
        return replace(sw, **changes) if self.kernel else sw

    @property
    def v2_model(self) -> bool:
        """A GICv2 guest model (KVM_DEV_TYPE_ARM_VGIC_V2)."""
        return self.gic_model is GicVersion.V2

    @property
    def host_v2(self) -> bool:
        """A GICv2 host (kvm_vgic_global_state.type == VGIC_V2): the vgic_v2_* paths."""
        return self.host_gic is GicVersion.V2

    @property
    def vgic_v3_cpuif_trap(self) -> bool:
        """The vgic_v3_cpuif_trap static key: the hyp emulates trapped GICv3 sysregs itself.

        vgic-v3.c (commit 1c3b3cadcd69): vgic_v3_probe enables it when the boot-time trap
        constant (kvm_compute_ich_hcr_trap_bits) is non-zero: TC on hosts without
        ARM64_HAS_ICH_HCR_EL2_TDIR (added by the series) or with
        kvm-arm.vgic_v3_common_trap; TALL0/TALL1 (the group trap parameters, Cavium
        erratum 30115) and Apple M1/M2's broken SEIS (which also forces TDIR) are not
        modelled. Never on a GICv2 host. Off on a plain TDIR-capable host: there every
        trapped DIR is a full exit.
        """
        if self.host_v2:
            return False
        return self.host_common_trap or (not self.host_tdir_cap and self.switches.dir_trapping)

    def __post_init__(self) -> None:
        if self.host_v2 and not self.v2_model:
            raise ValueError("a GICv3 guest model needs a GICv3 host (vgic_v3_probe)")

    def cpuif_config(self) -> CpuIfConfig:
        """The virtual CPU interface the host hardware offers this VM's vCPUs."""
        if self.v2_model:
            return CpuIfConfig(version=GicVersion.V2, nr_lr=self.nr_lr, pri_bits=5, pre_bits=5,
                               tds=False, switches=self.arch)
        return CpuIfConfig(nr_lr=self.nr_lr, pri_bits=self.pri_bits, pre_bits=self.pre_bits,
                           tds=self.host_tdir_cap, switches=self.arch)


@dataclass(eq=False)
class VgicDist:
    """struct vgic_dist: the distributor's state shared by all vCPUs."""

    enabled: bool
    nr_spis: int
    spis: list[VgicIrq]
    active_spis: AtomicInt
    config_lock: SpinLock
    # LPIs by INTID (dist->lpi_xa), allocated on MAPTI/MAPI by vgic_add_lpi, freed when
    # their refcount drops to 0; the xarray's lock serialises insertions (kvm/its.py).
    lpi_xa: dict[int, VgicIrq] = field(default_factory=dict)
    lpi_xa_lock: SpinLock = field(
        default_factory=lambda: SpinLock("dist.lpi_xa", RANK_LPI_XA_LOCK,
                                         flavour=IRQ_LOCK_FLAVOUR))


@dataclass(eq=False)
class KvmVcpu:
    """struct kvm_vcpu with its vgic_cpu: ap_list, shadow CPU interface, hardware interface.

    ``lrs``/``vgic_hcr`` are the shadow vgic_v3 state KVM computes at flush and
    reads at fold; ``cpuif`` is the hardware interface while the vCPU is loaded
    (VMCR and APRs live there across runs: KVM saves them eagerly and restores
    them unchanged). ``pause`` is vcpu->arch.pause (kvm_arm_halt_guest).
    """

    vcpu_id: int
    core: VcpuCore
    private_irqs: list[VgicIrq]
    ap_list: list[VgicIrq]
    ap_list_lock: SpinLock
    cpuif: VirtualCpuInterface
    lrs: list[ListRegister]
    vgic_hcr: IchHcr = field(default_factory=IchHcr)
    used_lrs: int = 0
    pause: bool = False
    # Per *physical* CPU after fix 6da5e537f5af: the last ap_list entry put in an LR
    # by the latest flush (one vCPU per pCPU here, so it lives with the vCPU).
    last_lr_irq: VgicIrq | None = None
    active_spis_at_check: int = 0  # mutant-stale-tdir: the value read before the requests
    # KVM_RUN has returned to the VMM (vcpu->mutex free: kvm_trylock_all_vcpus can take it)
    in_userspace: bool = False


@dataclass(eq=False)
class Kvm:
    """struct kvm: the distributor, the vCPUs, the configuration and the physical deactivations."""

    config: VmConfig
    sw: KernelSwitches
    dist: VgicDist
    vcpus: list[KvmVcpu]
    phys_deactivated: list[int] = field(default_factory=list)
    acked_notifications: list[int] = field(default_factory=list)  # kvm_notify_acked_irq calls
    # The host's physical GIC for HW-mapped interrupts (phys_gic.py; its record of
    # deactivations is phys_deactivated) and GSI routing / irqfds (irq_routing.py).
    phys: PhysGic = field(default_factory=PhysGic)
    irq_routing: KvmIrqRouting = field(default_factory=KvmIrqRouting)
    # Guest RAM as KVM reads it (kvm_read_guest): the LPI property table lives here; the
    # machine shares this dict with the guests' memory.
    guest_memory: dict[str, int] = field(default_factory=dict)
    its: VgicIts | None = None  # the VM's emulated ITS (kvm/its.py), created on first use
    # system_wq: deferred work (the irqfd inject work) runs on a kworker actor, in task
    # context (build_kvm gives it the run's scheduler)
    system_wq: Workqueue = field(kw_only=True)
    # The use-after-unlink detector's record (vgic_irq_stale): each time kernel code
    # followed a pointer to a vgic_irq it held without a reference after the irq left its
    # ap_list or was freed; checks/final.py reports them as irq-use-after-unlink.
    stale_touches: list[str] = field(default_factory=list)
    # Kernel-path coverage (checks/coverage.py names the paths): each path the model
    # takes counts one here
    coverage: Counter[str] = field(default_factory=Counter)
    # The SPI-tracking broadcasts: due (active_spis went 0 -> 1), started (in
    # kvm_make_all_cpus_request), done (it returned); vgic.py broadcast_phase reads them
    broadcasts_due: int = 0
    broadcasts_started: int = 0
    broadcasts_done: int = 0
    # SPIs whose last flush into an LR as pending came while a 0 -> 1 broadcast was due
    # but not started (broadcast_phase's flushed-before-bcst)
    populated_before_bcst: set[int] = field(default_factory=set)

    def vgic_get_irq(self, vcpu: KvmVcpu | None, intid: int) -> VgicIrq | None:
        """vgic.c: vgic_get_irq. Private irqs from ``vcpu``'s copy, SPIs from the distributor,
        LPIs from lpi_xa (a lockless RCU lookup in the kernel: no point)."""
        if intid < 32:
            return vcpu.private_irqs[intid] if vcpu is not None else None
        if intid < 32 + self.dist.nr_spis:
            return self.dist.spis[intid - 32]
        if intid >= LPI_MIN:
            return self.dist.lpi_xa.get(intid)
        return None

    def vgic_put_irq(self, irq: VgicIrq) -> None:
        """vgic.c: vgic_put_irq. Drop one LPI reference; the last one erases it from lpi_xa
        (vgic_release_lpi_locked). Private irqs and SPIs are not refcounted."""
        if not irq.is_lpi:
            return
        if irq.freed:  # refcount_t: "underflow; use-after-free"
            self.stale_touches.append(f"vgic_put_irq on LPI {irq.intid} after its last "
                                      "reference was put")
            return
        irq.refcount -= 1
        if irq.refcount <= 0:
            irq.freed = True
            if self.dist.lpi_xa.get(irq.intid) is irq:
                del self.dist.lpi_xa[irq.intid]

    def vgic_irq_stale(self, irq: VgicIrq, vcpu: KvmVcpu, where: str, *,
                       deref_next: bool = True) -> bool:
        """The use-after-unlink detector: True (and recorded) if ``irq`` was freed, or, when
        the caller follows its ap_list link (``deref_next``), is no longer on ``vcpu``'s
        ap_list (list_del poisoned the link).

        For the pointers the kernel keeps without a reference: host_data's last_lr_irq
        between flush and fold (6da5e537f5af; a later fix, "Take a refcount on IRQs
        referenced by last_lr_irq", adds one) and prune's migration candidate between
        dropping and re-taking the locks. The model cannot follow a stale pointer, so
        its callers stop where the kernel would fault or read freed memory.
        """
        kind = "LPI" if irq.is_lpi else "SPI" if irq.is_spi else "INTID"
        if irq.freed:
            why = "its last reference was put (freed)"
        elif deref_next and not any(e is irq for e in vcpu.ap_list):
            why = f"it is no longer on vcpu{vcpu.vcpu_id}'s ap_list"
        else:
            return False
        self.stale_touches.append(f"{where} followed {kind} {irq.intid} though {why}")
        return True

    @property
    def cores(self) -> list[VcpuCore]:
        """Every vCPU's mode/requests/wait (for kvm_make_all_cpus_request)."""
        return [v.core for v in self.vcpus]


def _hw_bit_deactivate(kvm: Kvm, cpu: int, pintid: int) -> None:
    """The guest's EOIR or DIR (or the hyp's emulated DIR) deactivates physical ``pintid``
    through an LR's HW bit (ICH_LR_EL2.HW, pINTID): counted, then done on CPU ``cpu``."""
    kvm.coverage["hw.deactivate-lr"] += 1
    kvm.phys.deactivate_on(cpu, pintid)


def _new_irq(intid: int, target: int) -> VgicIrq:
    irq = VgicIrq(intid=intid, target_vcpu=target, config=default_config(intid))
    irq.lock = SpinLock(f"irq{intid}" if intid >= 32 else f"vcpu{target}.irq{intid}",
                        RANK_IRQ_LOCK, intid, flavour=IRQ_LOCK_FLAVOUR)
    if intid < 16:
        irq.enabled = True  # kvm_vgic_vcpu_init: SGIs are always enabled
    return irq


def bcst_kick_needed(sw: KernelSwitches, config: VmConfig) -> bool:
    """vgic.c: vgic_model_needs_bcst_kick. GICv3 model, and (since 84792050e039) host TDIR."""
    if sw.bcst_kick == "off" or config.v2_model:
        return False
    return sw.bcst_kick == "v3_model" or config.host_tdir_cap


def leaked_active_spis(config: VmConfig) -> int:
    """vgic_dist.active_spis after ``config.edge_spis_queued`` edge SPIs were each queued
    (vgic_queue_irq_unlock: atomic_fetch_inc) and deactivated, none in flight: 0 at vGIC
    init (vgic-init.c), and one count left by each where the variant decrements only for
    level SPIs (vgic-v3.c at 1c3b3cadcd69: vgic_v3_fold_lr; findings W1), which the
    `AtomicInt` holds as an int, wrapping; 0 where nothing is counted or the count follows
    the ap_lists."""
    sw = config.switches
    if (not sw.active_spis_accounting or sw.fix_count_spis_on_ap_lists
            or not bcst_kick_needed(sw, config)):
        return 0
    return config.edge_spis_queued


def build_kvm(sched: Scheduler, config: VmConfig) -> Kvm:
    """kvm_vgic_create + kvm_vgic_dist_init + kvm_vgic_vcpu_init: a VM with its vCPUs on pCPUs.

    vCPU n runs on pCPU n. SPIs target vCPU0 (IROUTER reset value), edge, group 1
    on a GICv3 model (group 0 on GICv2), priority 0xa0 like a typical guest.
    """
    group = 0 if config.v2_model else 1
    spis = [_new_irq(32 + i, 0) for i in range(config.nr_spis)]
    for irq in spis:
        irq.group = group
        irq.priority = 0xA0
    dist = VgicDist(
        enabled=True, nr_spis=config.nr_spis, spis=spis,
        active_spis=AtomicInt("dist.active_spis", leaked_active_spis(config)),
        config_lock=SpinLock("kvm.config_lock", RANK_CONFIG_LOCK, flavour="mutex"),
    )
    cif = config.cpuif_config()
    vcpus = []
    kvm = Kvm(config=config, sw=config.switches, dist=dist, vcpus=[],
              system_wq=Workqueue(sched, "kworker"))
    kvm.phys.deactivated = kvm.phys_deactivated  # one record of physical deactivations
    for n in range(config.nr_vcpus):
        private = [_new_irq(i, n) for i in range(32)]
        for irq in private:
            irq.group = group
            irq.priority = 0xA0
        core = VcpuCore(n, Pcpu(sched, n, ipi_latency=config.ipi_latency))
        cpuif = VirtualCpuInterface(cif, on_physical_deactivate=partial(_hw_bit_deactivate,
                                                                        kvm, n))
        if config.v2_model:
            cpuif.state.v2_dir_page_trapped = config.switches.dir_trapping
        vcpus.append(KvmVcpu(
            vcpu_id=n, core=core, private_irqs=private, ap_list=[],
            ap_list_lock=SpinLock(f"vcpu{n}.ap_list_lock", RANK_AP_LIST_LOCK, n,
                                  flavour=IRQ_LOCK_FLAVOUR),
            cpuif=cpuif, lrs=[EMPTY_LR] * config.nr_lr,
        ))
    kvm.vcpus = vcpus
    return kvm
