"""Soak worker processes that survive each other: a dead worker is a recorded run, not a lost
campaign.

Each worker is a forked process serving run indices over its own pipe, in order, with
up to `DEPTH` of them queued (so it starts its next run while the parent is still
writing the last one's record: an fsynced finding would otherwise leave it idle); the
parent always knows which run a worker is on (the oldest it has not answered). A worker
that dies (kill -9, the OOM killer, a segfault) is noticed by its process sentinel: its
current run becomes a ``crash`` record (`died_record`: the run index, its scenario seed
and strategy, how the process ended), the runs queued behind it go to the other
workers, and a fresh worker takes its place. Each answer carries the CPU time the run
took in the worker (``time.process_time``), summed in `WorkerPool.cpu_seconds`, so a
benchmark can tell per-run cost from contention for the machine's cores; it travels as
MessagePack (`_ANSWER`), and a worker freezes what the fork gave it out of its garbage
collector's reach (``gc.freeze``). Workers ignore
SIGINT (Ctrl-C is the parent's to handle, so they print no traceback of their own) and
ask the kernel to SIGKILL them when the parent dies (PR_SET_PDEATHSIG), so a killed
soak leaves no orphans still running.
"""

from __future__ import annotations

import ctypes
import gc
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

import msgspec

from vgic_actors.soak.worker import RunRecord, run_index, scenario_seed, strategy_for

Runner = Callable[[Any, str, int, str, int], RunRecord]
"""``run_index``'s signature: (source, variant, campaign seed, strategy, index)."""

_PR_SET_PDEATHSIG = 1
DEPTH = 2
"""Run indices queued per worker (the one it runs and the next)."""


def died_record(variant: str, campaign_seed: int, strategy: str, index: int,
                exitcode: int | None) -> RunRecord:
    """The record of run ``index`` whose worker process died under it."""
    how = (f"killed by signal {-exitcode}" if exitcode is not None and exitcode < 0
           else f"exit status {exitcode}")
    return RunRecord(index=index, scenario_seed=scenario_seed(campaign_seed, index),
                     strategy=strategy_for(strategy, index), variant=variant,
                     outcome="crash", steps=0, violations=["crash"],
                     signature="crash/worker-died",
                     detail=f"the worker process died ({how}) during run {index}")


def _die_with_parent(parent: int) -> None:
    """SIGKILL this process when its parent exits (Linux); exit now if it already has."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:
        os._exit(0)


def _serve(conn: Connection, runner: Runner, args: tuple[Any, str, int, str],
           parent: int) -> None:
    """A worker's loop: receive an index, send back its record and the CPU seconds it
    took; None or EOF ends it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(parent)
    gc.freeze()  # what the fork inherited is never collected here: no copy-on-write walk
    encode = msgspec.msgpack.Encoder().encode
    while True:
        try:
            index = conn.recv()
        except (EOFError, OSError):
            return
        if index is None:
            return
        cpu = time.process_time()
        rec = runner(*args, index)
        conn.send_bytes(encode((rec, time.process_time() - cpu)))


_ANSWER = msgspec.msgpack.Decoder(tuple[RunRecord, float])
"""A worker's answer on the wire: its record and CPU seconds as MessagePack (a third of
pickle's cost for a RunRecord, and typed)."""


@dataclass
class _Worker:
    process: BaseProcess
    conn: Connection
    queued: deque[int] = field(default_factory=deque)  # sent, not answered; [0] runs

    @property
    def index(self) -> int | None:
        """The run the worker is on, if any."""
        return self.queued[0] if self.queued else None


class WorkerPool:
    """``workers`` processes running the indices of one campaign (see the module doc)."""

    def __init__(self, workers: int, source: Any, variant: str, campaign_seed: int,
                 strategy: str, *, runner: Runner | None = None) -> None:
        self.size = workers
        self.args = (source, variant, campaign_seed, strategy)
        self.runner = runner or run_index
        self.context = multiprocessing.get_context("fork")
        self.workers: list[_Worker] = []
        self.cpu_seconds = 0.0  # CPU time of the answered runs, in the workers

    def _spawn(self) -> _Worker:
        ours, theirs = self.context.Pipe()
        process = self.context.Process(target=_serve, daemon=True,
                                       args=(theirs, self.runner, self.args, os.getpid()))
        process.start()
        theirs.close()
        worker = _Worker(process, ours)
        self.workers.append(worker)
        return worker

    def run(self, indices: Iterator[int], record: Callable[[RunRecord], None],
            stop: Callable[[], bool]) -> None:
        """Run ``indices`` until they end or ``stop()``; ``record`` gets each record
        (a dead worker's run as `died_record`) as it arrives."""
        orphans: deque[int] = deque()  # queued behind a run whose worker died

        def next_index() -> int | None:
            return orphans.popleft() if orphans else next(indices, None)

        try:
            for _ in range(self.size):
                self._spawn()
            exhausted = False
            while True:
                for worker in self.workers:
                    while not exhausted and len(worker.queued) < DEPTH and not stop():
                        index = next_index()
                        if index is None:
                            exhausted = True
                            break
                        worker.queued.append(index)
                        worker.conn.send(index)
                busy = [w for w in self.workers if w.queued]
                if not busy:
                    return
                ready = multiprocessing.connection.wait(
                    [w.conn for w in busy] + [w.process.sentinel for w in busy])
                for worker in busy:
                    rec = self._collect(worker, ready)
                    if rec is None:
                        continue
                    record(rec)
                    if not worker.process.is_alive():
                        orphans.extend(worker.queued)
                        worker.queued.clear()
                        exhausted = exhausted and not orphans
                        self._retire(worker)
                        self._spawn()
        finally:
            self.close()

    def _collect(self, worker: _Worker, ready: list[Any]) -> RunRecord | None:
        """The finished record of ``worker``'s current run, its death record, or None
        (still running)."""
        assert worker.queued
        if worker.conn in ready:
            try:
                rec, cpu = _ANSWER.decode(worker.conn.recv_bytes())
                self.cpu_seconds += cpu
            except (EOFError, OSError):
                rec = self._died(worker)
        elif worker.process.sentinel in ready:
            rec = self._died(worker)
        else:
            return None
        worker.queued.popleft()
        return rec

    def _died(self, worker: _Worker) -> RunRecord:
        assert worker.index is not None
        worker.process.join()
        _, variant, seed, strategy = self.args
        return died_record(variant, seed, strategy, worker.index, worker.process.exitcode)

    def _retire(self, worker: _Worker) -> None:
        worker.conn.close()
        self.workers.remove(worker)

    def close(self) -> None:
        """Stop every worker: idle ones are told to end, busy ones killed."""
        for worker in self.workers:
            try:
                if not worker.queued:
                    worker.conn.send(None)
                else:
                    worker.process.kill()
            except OSError:
                worker.process.kill()
        for worker in self.workers:
            worker.process.join(timeout=5)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.conn.close()
        self.workers = []

    def pids(self) -> list[int]:
        """The worker processes' ids (for tests and diagnostics)."""
        return [w.process.pid for w in self.workers if w.process.pid is not None]
