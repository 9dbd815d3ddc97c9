"""Small multi-actor programs the runtime tests share (no GIC: counters stand in for IRQs)."""

from __future__ import annotations

from vgic_actors.runtime import (
    AtomicInt,
    ExitReason,
    GuestExit,
    Mailbox,
    Message,
    Pcpu,
    RunLoopConfig,
    Scheduler,
    SpinLock,
    VcpuCore,
    kvm_arch_vcpu_ioctl_run,
    kvm_make_all_cpus_request,
    kvm_vcpu_kick,
    point,
    serve,
)

KVM_REQ_IRQ_PENDING = 1


class ToyVcpuHooks:
    """A guest that runs a tiny program: 'mmio' traps to inject into the next vCPU."""

    def __init__(self, vm: ToyVm, i: int, program: list[str]) -> None:
        self.vm, self.i, self.program, self.pc = vm, i, program, 0
        self.vcpu = vm.vcpus[i]
        self.taken = 0

    async def check_vcpu_requests(self) -> bool:
        await self.vcpu.requests.kvm_check_request(KVM_REQ_IRQ_PENDING)
        return True

    async def flush_hwstate(self) -> None:
        async with self.vm.ap_locks[self.i]:
            self.vm.flushed[self.i] = self.vm.pending[self.i]

    async def sync_hwstate(self) -> None:
        async with self.vm.ap_locks[self.i]:
            self.vm.pending[self.i] -= self.vm.acked[self.i]
            self.vm.acked[self.i] = 0

    def maintenance_irq_level(self) -> bool:
        return False

    async def guest_step(self) -> GuestExit | None:
        await point(f"guest{self.i}.insn")
        if self.vm.flushed[self.i] > self.vm.acked[self.i]:  # take an interrupt
            self.vm.acked[self.i] += 1
            self.taken += 1
            await self.vm.active.dec_if_positive()
            return None
        if self.pc >= len(self.program):
            return GuestExit(ExitReason.HALT)
        insn = self.program[self.pc]
        self.pc += 1
        if insn == "mmio":
            return GuestExit(ExitReason.TRAP, detail="mmio")
        if insn == "wfi":
            return GuestExit(ExitReason.WFI)
        return None

    async def handle_exit(self, exit: GuestExit) -> bool:
        if exit.reason is ExitReason.HALT:
            return False
        if exit.reason is ExitReason.TRAP:
            target = (self.i + 1) % len(self.vm.vcpus)
            await self.vm.dist.request(("inject", target), kind="mmio")
        elif exit.reason is ExitReason.WFI:
            vm, i = self.vm, self.i
            await self.vcpu.wait.kvm_vcpu_block(
                lambda: vm.pending[i] > 0 or self.vcpu.requests.peek() != 0
            )
        return True


class ToyVm:
    """pCPUs running the run-loop shell, a distributor serving MMIO, a device timer."""

    def __init__(self, sched: Scheduler, n: int = 2, program: tuple[str, ...] = ()) -> None:
        prog = list(program or ("nop", "mmio", "nop", "wfi", "nop"))
        self.dist = Mailbox(sched, "dist")
        self.active = AtomicInt("active_spis")
        self.dist_lock = SpinLock("dist.lock", rank=1)
        self.ap_locks = [SpinLock(f"vcpu{i}.ap_list_lock", rank=2, sub=i) for i in range(n)]
        self.pcpus = [Pcpu(sched, i) for i in range(n)]
        self.vcpus = [VcpuCore(i, self.pcpus[i]) for i in range(n)]
        self.pending = [0] * n
        self.flushed = [0] * n
        self.acked = [0] * n
        self.injected = 0
        self.hooks = [ToyVcpuHooks(self, i, prog) for i in range(n)]
        sched.spawn("dist", lambda: serve(self.dist, self.handle))
        for i in range(n):
            sched.spawn(f"pcpu{i}", self._runner(i), cpu=i)
        sched.call_later(7, self._device_irq, name="device")

    def _runner(self, i: int):
        async def body() -> None:
            await kvm_arch_vcpu_ioctl_run(self.vcpus[i], self.hooks[i], RunLoopConfig(timeslice=4))
        return body

    def _device_irq(self) -> None:
        self.dist.post(("inject", 0), kind="irq", src="device")

    async def handle(self, msg: Message) -> object:
        _, target = msg.payload  # type: ignore[misc]
        async with self.dist_lock:
            self.injected += 1
        async with self.ap_locks[target]:
            self.pending[target] += 1
        if await self.active.fetch_inc() == 0:
            await kvm_make_all_cpus_request(self.vcpus, KVM_REQ_IRQ_PENDING)
        else:
            await kvm_vcpu_kick(self.vcpus[target])
        return target


def toy_vm(n: int = 2):
    """A setup function for `run`."""
    def setup(sched: Scheduler) -> None:
        toy_vm.last = ToyVm(sched, n)  # type: ignore[attr-defined]
    return setup


class Box:
    """A mutable result holder that setup functions fill in."""

    def __init__(self) -> None:
        self.x: AtomicInt | None = None
        self.bug = False


def ordering_bug(noise: int = 2, box: Box | None = None):
    """Depth 1: the reader must not read before the writer wrote (plus noise actors)."""
    box = box if box is not None else Box()

    def setup(sched: Scheduler) -> None:
        x = box.x = AtomicInt("x")
        box.bug = False

        async def writer() -> None:
            await point("w.prep")
            await x.set(1)

        async def reader() -> None:
            if await x.read() == 0:
                box.bug = True

        async def chatter() -> None:
            for _ in range(3):
                await point("noise")

        sched.spawn("writer", writer)
        sched.spawn("reader", reader)
        for i in range(noise):
            sched.spawn(f"noise{i}", chatter)

    return setup, box


def lost_update(noise: int = 1, box: Box | None = None):
    """Depth 2: two non-atomic increments; the bug is a lost update (final value 1)."""
    box = box if box is not None else Box()

    def setup(sched: Scheduler) -> None:
        x = box.x = AtomicInt("x")
        box.bug = False

        async def inc() -> None:
            t = await x.read()
            await x.set(t + 1)

        async def checker_done() -> None:
            for _ in range(2):
                await point("noise")

        sched.spawn("a", inc)
        sched.spawn("b", inc)
        for i in range(noise):
            sched.spawn(f"noise{i}", checker_done)

    return setup, box
