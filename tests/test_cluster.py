"""Sweeps on a Dask LocalCluster: the same numbers as in-process, and a worker killed mid-sweep
costs nothing but time."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

from analogsim.errors import AnalogsimError
from analogsim.experiments.card_grid import CardAxis
from analogsim.experiments.cluster import ClusterRunner, cluster_client
from analogsim.experiments.sweep import SweepPlan, sweep_accuracy
from analogsim.train.reference import trained_digits_mlp

distributed = pytest.importorskip("distributed")

PLAN = SweepPlan(axes=(CardAxis("read_noise.scale", (0.5, 1, 2, 4, 8, 16), mode="scale"),
                       CardAxis("adc.bits", (5, 7, 9))),
                 times_s=(1.0, 86400.0), instances=4, seed=2)


@pytest.fixture(scope="module")
def digits_mlp():
    model, data = trained_digits_mlp(seed=0, epochs=5)
    return model, (data.x_test, data.y_test)


@pytest.fixture(scope="module")
def serial(digits_mlp):
    return sweep_accuracy(*digits_mlp, "pcm", PLAN)


@pytest.fixture(scope="module")
def client():
    with cluster_client("local:2") as client:
        yield client


def test_one_or_two_workers_give_the_numbers_of_the_serial_sweep(digits_mlp, serial, client):
    two = sweep_accuracy(*digits_mlp, "pcm", PLAN, runner=ClusterRunner(client))
    np.testing.assert_array_equal(two, serial)
    one = sweep_accuracy(*digits_mlp, "pcm", PLAN, runner=ClusterRunner(client, chunk_size=18))
    np.testing.assert_array_equal(one, serial)  # one chunk: one worker does it all


def test_a_worker_killed_mid_sweep_loses_no_point(digits_mlp, serial, client):
    pids = client.run(os.getpid)  # worker address → process id
    victim = next(iter(pids.values()))
    written = []

    def kill_after_first(index, values, cost):
        written.append(index)
        if len(written) == 1:
            os.kill(victim, signal.SIGKILL)

    result = sweep_accuracy(*digits_mlp, "pcm", PLAN, runner=ClusterRunner(client, chunk_size=1),
                            on_point=kill_after_first)
    assert victim not in client.run(os.getpid).values()  # the nanny started a new worker
    assert sorted(written) == sorted(np.ndindex(6, 3))  # every point, each once
    np.testing.assert_array_equal(result, serial)


@pytest.mark.parametrize("address", ["cluster9", "udp://host:1", "local:0"])
def test_a_bad_cluster_address_is_named(address):
    with pytest.raises(AnalogsimError, match=f"--cluster '{address}'"), cluster_client(address):
        pass
