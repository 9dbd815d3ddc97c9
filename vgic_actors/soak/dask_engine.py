"""The soak's Dask engine: the same campaign on Dask distributed (the 'cluster' extra).

A scheduler address, or a local cluster of worker processes on loopback. Batches of
run indices are tasks; results come back as they finish and are recorded by the
campaign exactly as the local engine does (so --resume works across engines).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from vgic_actors.errors import UsageError
from vgic_actors.soak.campaign import Campaign, batches_of
from vgic_actors.soak.worker import run_batch


def run_dask(campaign: Campaign, *, runs: int | None, deadline: float | None,
             address: str | None, workers: int, on_progress: Callable[[], None]) -> None:
    """The same campaign on Dask distributed: a scheduler at ``address``, or a local cluster
    of ``workers`` processes. Batches are tasks; results come back as they finish."""
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise UsageError("--engine dask needs the 'cluster' extra: "
                         "pip install 'vgic-actors[cluster]'") from None
    spec, source = campaign.spec, campaign.source
    cluster = None if address else LocalCluster(n_workers=workers, threads_per_worker=1,
                                                processes=True, dashboard_address=None)
    client = Client(address or cluster)
    try:
        batches = batches_of(campaign.pending(runs))
        futures = as_completed()
        for _ in range(2 * max(workers, 1)):
            batch = next(batches, None)
            if batch is None:
                break
            futures.add(client.submit(run_batch, source, spec.variant, spec.seed,
                                      spec.strategy, batch, pure=False))
        for fut in futures:
            for rec in fut.result():
                campaign.record(rec)
            on_progress()
            if deadline is not None and time.monotonic() >= deadline:
                continue
            batch = next(batches, None)
            if batch is not None:
                futures.add(client.submit(run_batch, source, spec.variant, spec.seed,
                                          spec.strategy, batch, pure=False))
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
