"""Library code leaves torch's global generator alone: trainings seed it only inside
``global_rng_seeded``, whose draws equal those after ``torch.manual_seed``."""

from __future__ import annotations

import numpy as np
import torch

import analogsim as asim
from analogsim import datasets
from analogsim.experiments.spec_fields import ModelSetup
from analogsim.experiments.trained_models import trained_model
from analogsim.results import ResultsWriter
from analogsim.seeding import global_rng_seeded
from analogsim.train import TrainingConfig
from analogsim.train.reference import trained_digits_mlp


def _global_state() -> torch.Tensor:
    return torch.random.get_rng_state()


def test_seeded_block_draws_as_after_manual_seed_and_restores_the_generator():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        expected = torch.randn(1000)
    torch.randn(3)  # some state of the caller's
    before = _global_state()
    with global_rng_seeded(5):
        drawn = torch.randn(1000)
    assert torch.equal(drawn, expected)
    assert torch.equal(_global_state(), before)


def test_the_reference_training_leaves_the_global_generator_as_it_was():
    before = _global_state()
    model, _ = trained_digits_mlp(seed=3, epochs=1)
    assert torch.equal(_global_state(), before)
    torch.randn(7)  # another caller state gives the same model
    again, _ = trained_digits_mlp(seed=3, epochs=1)
    for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_an_experiment_training_leaves_the_global_generator_and_writes_its_history(tmp_path):
    setup = ModelSetup(dataset="digits", data_seed=0, data_root=None, model="mlp",
                       model_options={}, training=TrainingConfig(epochs=2, batch_size=64),
                       seeds=(1,))
    data = datasets.load("digits")
    before = _global_state()
    with ResultsWriter(tmp_path / "r.h5") as writer:
        _, history = trained_model(setup, 1, data, writer, tmp_path / "checkpoints")
    assert torch.equal(_global_state(), before)
    run = asim.load_results(tmp_path / "r.h5").runs["train_model_seed1"]
    assert run.done.all()
    np.testing.assert_array_equal(run.data["loss"], history.loss)
    np.testing.assert_array_equal(run.data["test_accuracy"], history.test_accuracy)
