"""GICD accesses run on the requesting vCPU's thread, concurrently (kvm_io_bus_write)."""

from vgic_actors.guest import GuestProgram, Mmio, SetGroupEnable
from vgic_actors.kvm import distributor
from vgic_actors.kvm.machine import start_vm
from vgic_actors.kvm.vm import VmConfig
from vgic_actors.runtime import RandomWalk, current_actor, run


def test_two_vcpus_gicd_writes_are_emulated_at_once_on_their_own_threads(monkeypatch):
    """Each access runs on its requester's actor, and two of them overlap in some run:
    the distributor actor routes, it does not serialise."""
    inside: set[str] = set()
    overlaps, where = [], set()
    real = distributor.vgic_mmio_access

    async def watched(kvm, access):
        me = current_actor().name
        where.add(me)
        inside.add(me)
        if len(inside) > 1:
            overlaps.append(sorted(inside))
        try:
            return await real(kvm, access)
        finally:
            inside.discard(me)

    monkeypatch.setattr(distributor, "vgic_mmio_access", watched)
    for seed in range(40):
        guests = [GuestProgram(f"vcpu{n}", [SetGroupEnable(), Mmio("ISENABLER", 32 + n),
                                            Mmio("ISPENDR", 32 + n)]) for n in range(2)]

        def setup(sched, guests=guests):
            start_vm(sched, VmConfig(nr_vcpus=2), guests)

        run(setup, RandomWalk(seed))
    assert where == {"pcpu0", "pcpu1"}
    assert ["pcpu0", "pcpu1"] in overlaps
