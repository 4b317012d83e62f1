"""Fixtures of the core tests: a local Dask cluster (tests of decoding_core.cluster and the CLI)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def dask_scheduler():
    """The address of a LocalCluster: 2 worker processes, 1 thread each, on 127.0.0.1.

    A worker's death is forgiven once per task (``allowed-failures`` 1): the task that
    the test kills a worker under runs again on the other.
    """
    import dask
    from distributed import LocalCluster

    with dask.config.set({"distributed.scheduler.allowed-failures": 1,
                          "distributed.comm.timeouts.connect": "120s"}):
        with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1",
                          dashboard_address=None) as local_cluster:
            yield local_cluster.scheduler_address
