"""Sweeps on a Dask distributed cluster: the grid cut into chunks, evaluated by workers.

``--cluster local`` (or ``local:N``) starts a :class:`distributed.LocalCluster` of N worker
processes (default: one per core), each with one thread and one torch thread;
``--cluster tcp://host:8786`` connects to a running scheduler (``dask scheduler`` on one
machine, ``dask worker tcp://host:8786 --nthreads 1`` on each worker, with analogsim and the
same torch installed). The sweep's job (model, test data, cards, plan) is sent to every worker
once; the points go out in chunks and come back as they finish; the driver process stays the
only writer of the results file. A chunk lost with a worker is computed again elsewhere
(Dask retries it), never lost. Each point depends only on the plan's seed, so the numbers are
the same with 0, 1 or N workers.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from analogsim.allocator import keep_freed_memory
from analogsim.errors import MissingExtraError, UsageError
from analogsim.experiments.sweep import PointResult, SweepJob

log = logging.getLogger(__name__)

_LOCAL = re.compile(r"local(?::(\d+))?")
#: Chunks per worker: enough to balance the load, few enough to keep scheduling cheap.
CHUNKS_PER_WORKER = 4
#: Times Dask re-runs a chunk whose worker died.
RETRIES = 3
#: Dask settings for the workers of ``local`` clusters. A worker's event loop and profiler
#: share the GIL with the thread computing the chunk; Dask's defaults sample its stack every
#: 10 ms (profiler) and wake the loop every 20 ms (tick) and 0.1 to 0.5 s (monitors), which
#: cost compute-bound workers 10 to 20 % here. Heartbeats, and so the detection of dead
#: workers, are unchanged.
QUIET_WORKERS = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "500ms",
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.worker.memory.monitor-interval": "2s",
}


class ClusterError(UsageError):
    """A cluster address that cannot be used."""


def _evaluate_chunk(job: SweepJob, indices: list[tuple[int, ...]]) -> list[PointResult]:
    """Run on a worker: one torch thread (the worker process is the unit of parallelism), and
    freed memory kept (the nanny starts workers with a 64 KiB malloc trim threshold)."""
    torch.set_num_threads(1)
    keep_freed_memory()
    return [(index, *job.evaluate(index)) for index in indices]


@contextmanager
def cluster_client(address: str) -> Iterator[Any]:
    """A ``distributed.Client`` for ``local``, ``local:N`` or ``tcp://host:port``.

    Raises:
        ClusterError: an address of another form, or a scheduler that does not answer.
        MissingExtraError: Dask distributed (the ``cluster`` extra) is not installed.
    """
    try:
        import dask
        from distributed import Client, LocalCluster
    except ImportError as error:
        raise MissingExtraError(f"--cluster needs Dask distributed, which cannot be imported "
                                f"({error}); `make test` installs it with every other extra "
                                "(or: pip install 'analogsim[cluster]')") from None
    # Dask logs every scheduler event at INFO on its own handler: follow our verbosity instead
    logging.getLogger("distributed").setLevel(max(logging.WARNING, log.getEffectiveLevel()))
    local = _LOCAL.fullmatch(address)
    if local:
        workers = int(local.group(1) or os.cpu_count() or 1)
        if workers < 1:
            raise ClusterError(f"--cluster {address!r}: local:N needs N ≥ 1 workers")
        with dask.config.set(QUIET_WORKERS), \
                LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                             dashboard_address=None, silence_logs=logging.ERROR) as cluster, \
                Client(cluster) as client:
            yield client
        return
    if not address.startswith("tcp://"):
        raise ClusterError(f"--cluster {address!r}: expected local, local:N or "
                           "tcp://host:port (a running dask scheduler)")
    try:
        client = Client(address, timeout="10s")
    except OSError as error:
        raise ClusterError(f"--cluster {address!r}: no scheduler answers there ({error})"
                           ) from None
    with client:
        yield client


class ClusterRunner:
    """Evaluates a sweep's points on a Dask cluster (a ``PointRunner`` for
    :func:`~analogsim.experiments.sweep.sweep_accuracy`).

    Args:
        client: a connected ``distributed.Client``.
        chunk_size: points per task (default: about four chunks per worker).
    """

    def __init__(self, client: Any, chunk_size: int | None = None) -> None:
        self.client = client
        self.chunk_size = chunk_size

    def __call__(self, job: SweepJob, indices: list[tuple[int, ...]]) -> Iterator[PointResult]:
        from distributed import as_completed

        if not indices:
            return
        workers = max(1, len(self.client.scheduler_info()["workers"]))
        size = self.chunk_size or max(1, math.ceil(len(indices) / (CHUNKS_PER_WORKER * workers)))
        chunks = [indices[i:i + size] for i in range(0, len(indices), size)]
        shared = self.client.scatter(job, broadcast=True, hash=False)  # a fresh key per sweep
        futures = [self.client.submit(_evaluate_chunk, shared, chunk, retries=RETRIES,
                                      pure=False) for chunk in chunks]
        log.info("sweep: %d points in %d chunks on %d workers", len(indices), len(chunks),
                 workers)
        try:
            for future in as_completed(futures):
                yield from future.result()
        finally:
            self.client.cancel(futures)
