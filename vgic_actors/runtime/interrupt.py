"""Ctrl-C between model runs, never inside one.

Trio delivers SIGINT as a KeyboardInterrupt raised into whatever task is running, and a
controlled run's tasks are parked by our scheduler in ways Trio's delivery does not
expect: the run then hangs, or dies inside trio/_core/_run.py with a long traceback.
So while a run is in progress (`runs_shielded`), SIGINT only sets a flag; when the run
returns, the interrupt is raised in the caller, between two runs, where every tool
keeps what finished. Trio installs no handler of its own when ours is in place. Outside
a run, and off the main thread (Dask worker threads), nothing changes.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

_pending = False


def _defer(_signum: int, _frame: FrameType | None) -> None:
    global _pending
    _pending = True


@contextmanager
def runs_shielded() -> Iterator[None]:
    """Hold SIGINT for the duration of one model run; raise it after the run returns."""
    global _pending
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield  # not ours to change (a worker thread, or a caller with its own handler)
        return
    signal.signal(signal.SIGINT, _defer)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if _pending:
            _pending = False
            raise KeyboardInterrupt
