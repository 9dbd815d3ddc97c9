"""Kicks, kvm_make_all_cpus_request and the run-loop shell follow kernel-vgic.md section 8."""

from vgic_actors.events import GuestExited, KickSent, MessageDelivered
from vgic_actors.runtime import (
    KVM_REQUEST_NO_WAKEUP,
    KVM_REQUEST_WAIT,
    ExitReason,
    GuestExit,
    Mode,
    Outcome,
    Pcpu,
    RandomWalk,
    Replay,
    RunLoopConfig,
    VcpuCore,
    kvm_arch_vcpu_ioctl_run,
    kvm_make_all_cpus_request,
    kvm_vcpu_kick,
    point,
    run,
    sleep,
)

REQ = 1


def kick_run(prepare, kicker, *, vcpus=1, kicker_cpu=None):
    """vCPUs on pCPUs 0..n-1, `prepare(sched, vcpus)` spawns sleepers, then the kicker."""
    events = []
    box = {}

    def setup(sched):
        cores = [VcpuCore(i, Pcpu(sched, i)) for i in range(vcpus)]
        box["cores"], box["sched"] = cores, sched
        prepare(sched, cores)
        sched.spawn("kicker", lambda: kicker(cores, box), cpu=kicker_cpu)

    result = run(setup, Replay([]), sinks=[events.append])
    assert result.outcome is Outcome.QUIESCENT
    return box["cores"], events, result


def sleeper(sched, core, flag):
    async def body():
        await core.wait.kvm_vcpu_block(lambda: flag[0])
    sched.spawn(f"vcpu{core.vcpu_id}", body, cpu=core.vcpu_id)


def kicks(events):
    return [(e.vcpu, e.how) for e in events if isinstance(e, KickSent)]


def test_kick_wakes_a_vcpu_blocked_in_wfi_without_an_ipi():
    """kvm_vcpu_kick on a vCPU in kvm_vcpu_block wakes it; no IPI is sent."""
    flag = [False]

    async def kicker(cores, _box):
        flag[0] = True
        await kvm_vcpu_kick(cores[0])

    _cores, events, result = kick_run(lambda s, c: sleeper(s, c[0], flag), kicker)
    assert kicks(events) == [(0, "wake")]
    assert result.stats.messages_sent == 0


def test_kick_ipis_only_a_vcpu_in_guest_mode():
    """IN_GUEST_MODE: cmpxchg to EXITING and one IPI; OUTSIDE: nothing at all."""

    async def kicker(cores, _box):
        await kvm_vcpu_kick(cores[0])
        await kvm_vcpu_kick(cores[1])

    def prepare(_sched, cores):
        cores[0].mode.mode = Mode.IN_GUEST_MODE

    cores, events, _result = kick_run(prepare, kicker, vcpus=2)
    assert kicks(events) == [(0, "ipi"), (1, "none")]
    assert cores[0].mode.peek() is Mode.EXITING_GUEST_MODE
    assert cores[1].mode.peek() is Mode.OUTSIDE_GUEST_MODE
    assert cores[0].pcpu.ipi.pending() == 1 and cores[1].pcpu.ipi.pending() == 0


def test_kick_of_the_vcpu_on_the_callers_cpu_sends_no_ipi():
    """On its own pCPU the kick only flips IN_GUEST_MODE to EXITING_GUEST_MODE."""

    async def kicker(cores, _box):
        await kvm_vcpu_kick(cores[0])

    def prepare(_sched, cores):
        cores[0].mode.mode = Mode.IN_GUEST_MODE

    cores, _, result = kick_run(prepare, kicker, kicker_cpu=0)
    assert result.stats.messages_sent == 0
    assert cores[0].mode.peek() is Mode.EXITING_GUEST_MODE


def three_vcpus(flag):
    def prepare(sched, cores):
        sleeper(sched, cores[0], flag)  # blocked in WFI
        cores[1].mode.mode = Mode.IN_GUEST_MODE  # running the guest
        # cores[2] stays OUTSIDE_GUEST_MODE
    return prepare


def test_make_all_cpus_request_sets_wakes_ipis_and_does_not_wait():
    """Every vCPU gets the bit; the sleeper is woken, the guest one IPIed; no waiting."""
    flag = [False]
    seen = {}

    async def kicker(cores, box):
        flag[0] = True  # what the request makes runnable
        await kvm_make_all_cpus_request(cores, REQ)
        seen["in_flight"] = len(box["sched"].in_flight)

    cores, events, _ = kick_run(three_vcpus(flag), kicker, vcpus=3)
    assert [c.requests.peek() for c in cores] == [1 << REQ] * 3
    assert kicks(events) == [(0, "wake"), (2, "none"), (1, "ipi")]
    assert seen["in_flight"] == 1  # the IPI was still in flight when the call returned


def test_make_all_cpus_request_with_wait_waits_until_handled():
    """A WAIT request returns only after its IPIs were handled; NO_WAKEUP wakes no one."""
    flag = [False]
    seen = {}

    async def kicker(cores, box):
        cores[1].pcpu.irqs_disabled = False  # that CPU takes interrupts as they arrive
        await kvm_make_all_cpus_request(cores, REQ | KVM_REQUEST_WAIT | KVM_REQUEST_NO_WAKEUP)
        seen["in_flight"] = len(box["sched"].in_flight)
        seen["ipi1"] = cores[1].pcpu.ipi.pending()
        flag[0] = True
        await cores[0].wait.kvm_vcpu_wake_up()

    _cores, events, _ = kick_run(three_vcpus(flag), kicker, vcpus=3)
    assert seen == {"in_flight": 0, "ipi1": 0}
    assert ("wake" not in [how for v, how in kicks(events) if v == 0])


def test_wait_request_blocks_while_the_target_has_irqs_disabled():
    """Delivered is not handled: the WAIT caller sleeps until the target enables IRQs.

    The spinning target never yields under the all-zero schedule; the IPI latency bound
    forces the delivery anyway.
    """
    order = []

    def prepare(sched, cores):
        cores[1].mode.mode = Mode.IN_GUEST_MODE
        cores[1].pcpu.ipi_latency = 5

        async def target():
            await sleep(1)  # let the kicker send first
            while not cores[1].pcpu.ipi.pending():
                await point("guest")
            order.append("delivered")
            await point("exit")
            order.append("irq_enable")
            cores[1].pcpu.local_irq_enable()

        sched.spawn("vcpu1", target, cpu=1)

    async def kicker(cores, _box):
        await kvm_make_all_cpus_request(cores, REQ | KVM_REQUEST_WAIT)
        order.append("returned")

    kick_run(prepare, kicker, vcpus=2)
    assert order == ["delivered", "irq_enable", "returned"]


class SpinGuest:
    """Hooks for a guest that only spins (nop) for `length` instructions, then halts."""

    def __init__(self, core, length):
        self.core, self.left = core, length

    async def check_vcpu_requests(self):
        await self.core.requests.kvm_check_request(REQ)
        return True

    async def flush_hwstate(self):
        pass

    async def sync_hwstate(self):
        pass

    def maintenance_irq_level(self):
        return False

    async def guest_step(self):
        await point("guest.insn")
        self.left -= 1
        return GuestExit(ExitReason.HALT) if self.left <= 0 else None

    async def handle_exit(self, exit):
        return exit.reason is not ExitReason.HALT


def missed_request_runs(recheck, seeds):
    """Count runs where the guest ran on with a request pending and no IPI coming."""
    bad_runs = 0
    for seed in seeds:
        state = {"done": False, "bad": False}

        def setup(sched, state=state):
            core = VcpuCore(0, Pcpu(sched, 0))
            guest = SpinGuest(core, 12)
            cfg = RunLoopConfig(timeslice=50, recheck_requests=recheck)
            sched.spawn("pcpu0", lambda: kvm_arch_vcpu_ioctl_run(core, guest, cfg), cpu=0)

            async def requester():
                await point("think")
                await kvm_make_all_cpus_request([core], REQ)
                state["done"] = True

            sched.spawn("requester", requester, cpu=1)

            def check(ev):
                stepping = getattr(ev, "label", "") == "guest.insn"
                if (stepping and state["done"] and core.mode.peek() is Mode.IN_GUEST_MODE
                        and core.requests.peek() and not sched.in_flight
                        and not core.pcpu.ipi.pending()):
                    state["bad"] = True

            state["check"] = check

        def events_sink(ev, state=state):
            if "check" in state:
                state["check"](ev)

        run(setup, RandomWalk(seed), sinks=[events_sink])
        bad_runs += state["bad"]
    return bad_runs


def test_request_recheck_after_entering_guest_mode_closes_the_race():
    """With the recheck no seed runs the guest on a missed request; the mutant does."""
    assert missed_request_runs(True, range(150)) == 0
    assert missed_request_runs(False, range(150)) > 0


def test_guest_notices_an_ipi_only_after_delivery():
    """IPI exits follow a delivery; some seeds run guest instructions while it is in flight."""
    lagged = 0
    for seed in range(60):
        events = []

        def setup(sched):
            core = VcpuCore(0, Pcpu(sched, 0))
            guest = SpinGuest(core, 30)
            sched.spawn("pcpu0", lambda: kvm_arch_vcpu_ioctl_run(
                core, guest, RunLoopConfig(timeslice=40)), cpu=0)

            async def kicker():
                for _ in range(6):
                    await point("think")
                await kvm_vcpu_kick(core)

            sched.spawn("kicker", kicker, cpu=1)

        run(setup, RandomWalk(seed), sinks=[events.append])
        delivered = in_flight = False
        for ev in events:
            if isinstance(ev, KickSent) and ev.how == "ipi":
                in_flight = True
            elif isinstance(ev, MessageDelivered) and ev.kind == "ipi":
                delivered, in_flight = True, False
            elif isinstance(ev, GuestExited) and ev.reason == "ipi":
                assert delivered
            elif in_flight and getattr(ev, "label", "") == "guest.insn":
                lagged += 1
    assert lagged > 0


def test_maintenance_interrupt_can_land_after_further_guest_instructions():
    """Once the MI level rises, the guest may run more instructions before the MI exit
    (gic-arch.md 3: an MI may arrive late); the latency bound still forces the exit."""
    seen = {"after": 0, "exits": []}

    class MiGuest(SpinGuest):
        def maintenance_irq_level(self):
            return self.left <= 90  # the level rises after 10 instructions

        async def guest_step(self):
            if self.left <= 90:
                seen["after"] += 1
            return await super().guest_step()

        async def handle_exit(self, exit):
            seen["exits"].append(exit.reason)
            return False

    def setup(sched):
        core = VcpuCore(0, Pcpu(sched, 0, ipi_latency=6))
        guest = MiGuest(core, 100)
        sched.spawn("pcpu0", lambda: kvm_arch_vcpu_ioctl_run(core, guest, RunLoopConfig()),
                    cpu=0)

    run(setup, Replay([]))
    assert seen["exits"] == [ExitReason.MAINTENANCE]
    assert 1 < seen["after"] <= 8
