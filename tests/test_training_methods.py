"""Mechanics of the training methods against their formulas (METHODS.md §2–§8)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from analogsim import datasets, models
from analogsim.seeding import make_generator
from analogsim.train import (
    NoiseAware,
    Ramp,
    RandomWeightPerturbation,
    Sharpness,
    Staircase,
    Standard,
    TrainingConfig,
    fit,
    perturbation,
)
from analogsim.train.methods import TrainingContext
from analogsim.train.sam import SAM
from analogsim.train.schedules import multi_step_sam_rho

SE_BOUND = 5  # standard errors allowed in statistical checks


def _context(model, optimizer, seed=0):
    return TrainingContext(model=model, loss_fn=nn.functional.cross_entropy,
                           optimizer=optimizer, generator=make_generator(seed, 9))


def _batch(seed=0, n=32, features=8, classes=3):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, features, generator=g), torch.randint(0, classes, (n,), generator=g)


def _mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3))


def test_sam_perturbation_has_norm_rho_and_the_update_uses_the_gradient_at_w_plus_eps():
    model = _mlp()
    x, y = _batch()
    optimizer = SAM(model.named_parameters(), torch.optim.SGD, rho=0.3, lr=0.1)
    w = [p.detach().clone() for p in model.parameters()]
    nn.functional.cross_entropy(model(x), y).backward()
    optimizer.first_step(zero_grad=True)
    epsilon = [p.detach() - w0 for p, w0 in zip(model.parameters(), w, strict=True)]
    assert float(torch.sqrt(sum((e**2).sum() for e in epsilon))) == pytest.approx(0.3, rel=1e-5)
    nn.functional.cross_entropy(model(x), y).backward()
    g_prime = [p.grad.detach().clone() for p in model.parameters()]
    optimizer.second_step()
    for p, w0, g in zip(model.parameters(), w, g_prime, strict=True):
        torch.testing.assert_close(p.detach(), w0 - 0.1 * g)  # SGD step from w with g'


@pytest.mark.parametrize(("eta", "weight_only"), [(0.0, False), (0.01, True)],
                         ids=["davda54", "kwon"])
def test_asam_variants_match_their_formulas_on_two_parameters(eta, weight_only):
    weight = nn.Parameter(torch.tensor([2.0, -0.5]))
    bias = nn.Parameter(torch.tensor([1.5]))
    optimizer = SAM([("weight", weight), ("bias", bias)], torch.optim.SGD, rho=0.7,
                    adaptive=True, eta=eta, weight_only=weight_only, lr=0.1)
    weight.grad, bias.grad = torch.tensor([0.3, 0.4]), torch.tensor([-0.2])
    t_w = weight.detach().abs() + eta
    t_b = torch.ones(1) if weight_only else bias.detach().abs() + eta
    norm = torch.sqrt(((t_w * weight.grad) ** 2).sum() + ((t_b * bias.grad) ** 2).sum())
    expected_w = weight.detach() + 0.7 * t_w**2 * weight.grad / norm
    expected_b = bias.detach() + 0.7 * t_b**2 * bias.grad / norm
    optimizer.first_step()
    torch.testing.assert_close(weight.detach(), expected_w)
    torch.testing.assert_close(bias.detach(), expected_b)


def test_sam_and_rwp_steps_restore_the_weights_exactly():
    for method in (Sharpness(rho=0.5), RandomWeightPerturbation(sigma=0.3, alpha=0.5)):
        model = _mlp()
        optimizer = method.make_optimizer(model, torch.optim.SGD, lr=0.0)
        before = [p.detach().clone() for p in model.parameters()]
        ctx = _context(model, optimizer)
        method.start_epoch(ctx, 0)
        method.step(ctx, *_batch())
        for p, b in zip(model.parameters(), before, strict=True):
            assert torch.equal(p.detach(), b), method.name  # lr = 0: exactly the old weights


def test_sam_batch_norm_bypass_keeps_running_stats_of_the_first_pass():
    model = _mlp()
    x, y = _batch()
    reference = _mlp()
    reference(x)  # one forward in train mode updates the running mean once
    method = Sharpness(rho=0.5)
    optimizer = method.make_optimizer(model, torch.optim.SGD, lr=0.0)
    method.step(_context(model, optimizer), x, y)
    torch.testing.assert_close(model[1].running_mean, reference[1].running_mean)


@pytest.mark.parametrize("kind", ["absolute", "additive_maxabs", "multiplicative",
                                  "filterwise_norm"])
def test_rwp_noise_std_matches_its_scaling(kind):
    torch.manual_seed(1)
    layer = nn.Conv2d(4, 6, 3)
    weight = layer.weight
    sigma, draws = 0.05, 400
    generator = make_generator(0, 1)
    samples = torch.stack([perturbation.draw_perturbations([weight], sigma, kind, generator)[0]
                           for _ in range(draws)])  # (draws, *shape)
    w = weight.detach()
    expected = {
        "absolute": torch.full_like(w, sigma),
        "additive_maxabs": torch.full_like(w, sigma * float(w.abs().max())),
        "multiplicative": sigma * w.abs(),
        "filterwise_norm": sigma * w.reshape(6, -1).norm(dim=1).reshape(6, 1, 1, 1).expand_as(w),
    }[kind]
    # per filter: pool the draws of its elements after dividing by the expected std
    standardised = (samples / expected).reshape(draws, 6, -1).transpose(0, 1).reshape(6, -1)
    n = standardised.shape[1]
    for std in standardised.std(dim=1):
        assert abs(float(std) - 1) < SE_BOUND / math.sqrt(2 * (n - 1))  # SE of a sample std


def test_multi_step_schedule_and_ramps():
    rho = multi_step_sam_rho()
    assert [rho(e) for e in (0, 9, 10, 19, 20, 199)] == pytest.approx([0, 0, 0.02, 0.02, 0.04,
                                                                       0.38])
    ramp = Ramp(end=0.1, length=10)
    assert [ramp(e) for e in (0, 5, 10, 20)] == pytest.approx([0.0, 0.05, 0.1, 0.1])
    assert Staircase(increment=0.1, every=2, maximum=0.15)(10) == pytest.approx(0.15)


def test_sharpness_writes_the_scheduled_rho_into_every_group():
    model = _mlp()
    method = Sharpness(rho=multi_step_sam_rho())
    optimizer = method.make_optimizer(model, torch.optim.SGD, lr=0.1)
    method.start_epoch(_context(model, optimizer), 25)
    assert all(group["rho"] == pytest.approx(0.04) for group in optimizer.param_groups)


def test_persistent_noise_accumulates_as_sigma_sqrt_epochs_without_training():
    """lr = 0: the weights random-walk, std σ√E after E epochs (S0's literal procedure)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 200), nn.ReLU(), nn.Linear(200, 10))
    start = [w.detach().clone() for w in perturbation.perturbable_weights(model)]
    data = datasets.load("digits")
    config = TrainingConfig(epochs=9, learning_rate=0.0, momentum=0.0, weight_decay=0.0,
                            batch_size=512)
    fit(model, data, NoiseAware(sigma=0.1), config)
    drift = torch.cat([(w.detach() - s).flatten() for w, s in
                       zip(perturbation.perturbable_weights(model), start, strict=True)])
    expected, n = 0.1 * math.sqrt(9), drift.numel()
    assert abs(float(drift.std()) - expected) < SE_BOUND * expected / math.sqrt(2 * (n - 1))


def test_noise_touches_only_conv_and_linear_weights():
    model = _mlp()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    weights = perturbation.perturbable_weights(model)
    perturbation.add_(weights, perturbation.draw_perturbations(weights, 0.1, "absolute",
                                                               make_generator(0, 2)))
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed == {"0.weight", "3.weight"}


def test_training_resumes_from_its_checkpoint_with_the_same_numbers(tmp_path):
    data = datasets.load("digits")
    config = TrainingConfig(epochs=4, learning_rate=0.05, batch_size=64)

    def model():
        torch.manual_seed(0)
        return models.create("mlp")

    full = fit(model(), data, RandomWeightPerturbation(0.05), config)
    path = tmp_path / "ckpt.pt"
    short = TrainingConfig(**{**config.__dict__, "epochs": 2})
    first = model()
    fit(first, data, RandomWeightPerturbation(0.05), short, checkpoint=path)
    state = torch.load(path, weights_only=True)
    state["config"] = repr(config)  # pretend the 4-epoch run was killed after epoch 2
    torch.save(state, path)
    reported = []
    resumed = fit(model(), data, RandomWeightPerturbation(0.05), config, checkpoint=path,
                  on_epoch=reported.append)
    assert resumed.loss == pytest.approx(full.loss, rel=1e-6)
    assert resumed.test_accuracy == full.test_accuracy
    # the callback saw every epoch of the history: the two resumed ones, then two new ones
    assert [m.epoch for m in reported] == [0, 1, 2, 3]
    assert [m.loss for m in reported] == resumed.loss
    assert [m.seconds for m in reported] == resumed.seconds


def test_standard_training_learns_digits():
    torch.manual_seed(0)
    model = models.create("mlp")
    history = fit(model, datasets.load("digits"), Standard(),
                  TrainingConfig(epochs=5, learning_rate=0.05, batch_size=64))
    assert history.test_accuracy[-1] > 0.9
    assert len(history.gradient_norm) == 5 and all(s > 0 for s in history.seconds)
