"""Kind ``walking_noise``: global and layer-wise activation-noise sweeps, midpoints, guided
multi-execution (S2; METHODS.md §9–§12).

Noise operators sit after the modules of the §10 order (or the spec's sites). For every
training seed and σ of the grid the model is evaluated with noise at every operator (global)
and at one operator at a time (layer-wise, walking noise). With ``noise.in_training`` each
point gets its own model trained with that noise (S2 Table 1); otherwise one noise-free model
per seed is evaluated at every point (inference only, S2 Table 4). Each evaluation draws
from streams derived from (seed, site, σ), so a run is reproducible.

The results file holds:

- ``/runs/global_noise``: accuracy[sigma, seed]; ``/runs/layerwise_noise``:
  accuracy[site, sigma, seed];
- ``/runs/<run>_midpoints``: the logistic fit of each site (μ, a_min, their errors, χ²,
  whether accuracy falls to chance) and the fitted curve on a fine σ grid;
- ``/runs/guided`` (with ``[guided]``): accuracy[allocation, replicate] of uniform (n_i = 2)
  and guided (n_i ∝ 1/μ_i) multi-execution at the same total, replicates being
  (seed, repeat) pairs.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from analogsim import models
from analogsim.errors import SpecError
from analogsim.evaluation import evaluate
from analogsim.experiments.interruption import check_stop
from analogsim.experiments.trained_models import load_data, trained_model
from analogsim.experiments.walking_spec import (
    GLOBAL_MIDPOINT,
    GuidedSpec,
    NoiseSpec,
    WalkingNoiseSpec,
)
from analogsim.profiling import (
    MODEL_INPUT,
    AdditiveNoise,
    MixedNoise,
    MultiplicativeNoise,
    NoiseOperator,
    activate_operators,
    allocate_repetitions,
    fit_midpoint,
    insert_noise_operators,
    noise_sites,
    reseed_operators,
    set_repetitions,
    uniform_repetitions,
)
from analogsim.profiling.noise_laws import NoiseLaw
from analogsim.results import ResultsWriter, Run, spec_fingerprint
from analogsim.sampling import sampling_attrs
from analogsim.seeding import Purpose, derive_seed

log = logging.getLogger(__name__)

#: Points of the fitted curve stored per site.
FIT_POINTS = 200
GLOBAL = -1  # the "site" of global noise in seed keys and operator activation


def noise_law(noise: NoiseSpec, sigma: float) -> NoiseLaw:
    """The operator's law at noise level σ (for mixed noise: the amplitude A, or σ_add)."""
    if noise.law == "additive":
        return AdditiveNoise(sigma)
    if noise.law == "multiplicative":
        return MultiplicativeNoise(sigma)
    if noise.parametrisation == "amplitude":
        return MixedNoise.from_amplitude(sigma, noise.ratio, noise.multiplicative_first)
    return MixedNoise(noise.sigma_mul, sigma, noise.multiplicative_first)


def site_labels(model: nn.Module, sites: list[str], skip_batchnorm: bool) -> list[str]:
    """'<operator index>: <type> [<module name>]' per site (index in the §10 order of the
    model; '-' for a site outside it), e.g. '0: input', '3: Linear [fc1]'."""
    order = noise_sites(model, skip_batchnorm=skip_batchnorm)
    modules = dict(model.named_modules())
    labels = []
    for site in sites:
        index = order.index(site) if site in order else "-"
        labels.append(f"{index}: input" if site == MODEL_INPUT
                      else f"{index}: {type(modules[site]).__name__} [{site}]")
    return labels


class _NoisyModel:
    """A model with its noise operators, evaluated at one noise setting at a time."""

    def __init__(self, model: nn.Module, operators: list[NoiseOperator], seed: int) -> None:
        self.model, self.operators, self.seed = model, operators, seed

    def accuracy(self, test: tuple[torch.Tensor, torch.Tensor], law: NoiseLaw, site: int,
                 key: tuple[int, ...]) -> float:
        """Test accuracy with ``law`` at operator ``site`` (GLOBAL: all), noise streams
        derived from (seed, key)."""
        for operator in self.operators:
            operator.noise = law
        activate_operators(self.operators, None if site == GLOBAL else site)
        reseed_operators(self.operators,
                         derive_seed(self.seed, Purpose.ACTIVATION_NOISE, *key))
        return evaluate(self.model, test, batch_size=1024).mean


def _insert_operators(model: nn.Module, spec: WalkingNoiseSpec, seed: int, sigma: float = 0.0,
                      site: int = GLOBAL) -> list[NoiseOperator]:
    """The spec's operators in ``model`` (its sites, law at σ, switches), noisy at ``site``."""
    noise = spec.noise
    operators = insert_noise_operators(
        model, lambda: NoiseOperator(
            noise_law(noise, sigma), grad_mode=noise.grad_mode,
            enable_in_training=noise.in_training, enable_in_eval=noise.in_eval,
            normalize_to_input_size=noise.normalize_to_input_size),
        seed=derive_seed(seed, Purpose.ACTIVATION_NOISE), after=spec.sites,
        skip_batchnorm=noise.skip_batchnorm)
    activate_operators(operators, None if site == GLOBAL else site)
    return operators


def _noisy_model(spec: WalkingNoiseSpec, seed: int, data, writer: ResultsWriter,
                 checkpoints: Path, progress: bool, sigma: float = 0.0, site: int = GLOBAL,
                 label: str = "model") -> _NoisyModel:
    """Train (or load) the model of one seed with operators in place, noisy at (σ, site) when
    the noise is on in training."""
    operators: list[NoiseOperator] = []
    model, _ = trained_model(
        spec.setup, seed, data, writer, checkpoints, label=label,
        prepare=lambda model: operators.extend(_insert_operators(model, spec, seed, sigma, site)),
        progress=progress)
    return _NoisyModel(model, operators, seed)


def _untrained_noisy_model(spec: WalkingNoiseSpec) -> _NoisyModel:
    """The spec's model, untrained, with its operators: where the sites are."""
    model = models.create(spec.setup.model, **spec.setup.model_options)
    return _NoisyModel(model, _insert_operators(model, spec, seed=0), 0)


def _fit_table(writer: ResultsWriter, source: Run, name: str, labels: list[str],
               sigmas: np.ndarray, accuracy: np.ndarray, spec: WalkingNoiseSpec,
               num_classes: int, test_samples: int) -> np.ndarray:
    """Fit every site of accuracy[site, sigma, seed]; write ``<name>_midpoints``; μ per site."""
    positive = sigmas[sigmas > 0]
    fine = np.geomspace(positive.min(), sigmas.max(), FIT_POINTS)
    if spec.fit.x_space == "linear" and sigmas.min() == 0:
        fine = np.concatenate([[0.0], fine[:-1]])  # a linear fit covers σ = 0 too
    metrics = ("mu", "mu_error", "a_min", "a_min_error", "delta_a", "chi2", "falls_to_chance")
    run = writer.create_run(
        f"{name}_midpoints", axes={"site": labels, "sigma_fit": fine},
        metrics={**{m: ("site",) for m in metrics}, "fitted_accuracy": ("site", "sigma_fit")},
        units={"mu": source.group["axes/sigma"].attrs["unit"], "fitted_accuracy": "fraction"},
        attrs={"kind": "midpoints", "source_run": name, "x_space": spec.fit.x_space,
               "fix_amin": int(spec.fit.fix_amin), "components": spec.fit.components,
               "num_classes": num_classes,
               "title": f"midpoint fits of {name.replace('_', ' ')}"},
        point_axes=0)
    table = {m: np.full(len(labels), np.nan) for m in metrics}
    fitted = np.full((len(labels), FIT_POINTS), np.nan)
    for i, label in enumerate(labels):
        kept = sigmas > 0 if spec.fit.x_space == "log10" else np.ones(len(sigmas), bool)
        y = accuracy[i][kept]
        # one seed has no spread: Δy is then the binomial error of the test set alone
        spread = np.zeros(len(y)) if y.shape[-1] == 1 else None
        try:
            fit = fit_midpoint(sigmas[kept], y[:, 0] if spread is not None else y,
                               spread=spread, num_classes=num_classes,
                               fix_amin=spec.fit.fix_amin,
                               x_space=spec.fit.x_space, components=spec.fit.components,
                               dy_floor=spec.fit.dy_floor, n_test=test_samples)
        except SpecError as error:
            log.warning("no midpoint fit for %s: %s", label, error)
            continue
        for metric in metrics:
            table[metric][i] = float(getattr(fit, metric))
        fitted[i] = fit.curve(fine)
    run.write_point((), **table, fitted_accuracy=fitted)
    if accuracy.shape[-1] >= 2:
        _per_seed_table(writer, source, name, labels, sigmas, accuracy, spec, num_classes,
                        test_samples)
    return table["mu"]


def _per_seed_table(writer: ResultsWriter, source: Run, name: str, labels: list[str],
                    sigmas: np.ndarray, accuracy: np.ndarray, spec: WalkingNoiseSpec,
                    num_classes: int, test_samples: int) -> None:
    """μ fitted to each seed alone (Δy: the test set's binomial error), written as
    ``<name>_midpoints_per_seed`` [site, seed]: the spread of μ over trained models, which
    the fit of the seed mean does not show."""
    seeds = source.group["axes/seed"][()]
    run = writer.create_run(
        f"{name}_midpoints_per_seed", axes={"site": labels, "seed": seeds},
        metrics={"mu": ("site", "seed"), "falls_to_chance": ("site", "seed")},
        units={"mu": source.group["axes/sigma"].attrs["unit"]},
        attrs={"kind": "midpoints_per_seed", "source_run": name,
               "title": f"midpoint μ per seed of {name.replace('_', ' ')}"}, point_axes=0)
    mu = np.full((len(labels), len(seeds)), np.nan)
    falls = mu.copy()
    kept = sigmas > 0 if spec.fit.x_space == "log10" else np.ones(len(sigmas), bool)
    for (i, s), _ in np.ndenumerate(mu):
        y = accuracy[i][kept][:, s]
        try:
            fit = fit_midpoint(sigmas[kept], y, spread=np.zeros(len(y)), num_classes=num_classes,
                               fix_amin=spec.fit.fix_amin, x_space=spec.fit.x_space,
                               components=spec.fit.components, dy_floor=spec.fit.dy_floor,
                               n_test=test_samples)
        except SpecError:
            continue
        mu[i, s], falls[i, s] = float(fit.mu), float(fit.falls_to_chance)
    run.write_point((), mu=mu, falls_to_chance=falls)


def run_walking_noise(spec: WalkingNoiseSpec, results_path: str | Path,
                      progress: bool = False) -> Path:
    """Run the spec's global and layer-wise sweeps, fits and guided comparison."""
    results_path = Path(results_path)
    checkpoints = results_path.with_suffix(".checkpoints")
    data = load_data(spec.setup)
    test = (data.x_test, data.y_test)
    seeds = spec.setup.seeds
    sigmas = np.asarray(spec.sigmas)
    with ResultsWriter(results_path, fingerprint=spec_fingerprint(spec.text)) as writer:
        writer.add_config("spec", spec.text)
        # inference only: one noise-free model per seed serves every point; with noise in
        # training every point trains its own, and an untrained copy gives the sites
        trained = ([_noisy_model(spec, seed, data, writer, checkpoints, progress)
                   for seed in seeds] if not spec.noise.in_training else [])
        layout = trained[0] if trained else _untrained_noisy_model(spec)
        operators = layout.operators
        labels = site_labels(layout.model, [op.site for op in operators],
                             spec.noise.skip_batchnorm)
        walks = ([("global_noise", [GLOBAL], ["global"])] if spec.global_noise else []) + (
            [("layerwise_noise", list(range(len(operators))), labels)] if spec.layerwise
            else [])
        attrs = {"kind": "walking_noise", "law": spec.noise.law,
                 "noise_in_training": int(spec.noise.in_training),
                 "noise_in_eval": int(spec.noise.in_eval),
                 "num_classes": data.num_classes, "test_samples": len(data.y_test),
                 "grad_mode": spec.noise.grad_mode, "summary": spec.description}
        midpoints = {}
        for name, sites, site_names in walks:
            mode = name.split("_")[0]
            axes = {"site": site_names} if mode == "layerwise" else {}
            run = writer.create_run(
                name, axes={**axes, "sigma": sigmas, "seed": seeds},
                units={"sigma": "" if spec.noise.law == "multiplicative" else "activation",
                       "accuracy": "fraction"},
                attrs={**attrs, "mode": mode,
                       "title": f"{spec.name}: {mode} {spec.noise.law} activation noise, "
                                f"{'trained with' if spec.noise.in_training else 'inference-only'}"
                                " noise"},
                point_axes=len(axes) + 1)
            accuracy = run.read("accuracy").reshape(len(sites), len(sigmas), len(seeds))
            for i, site in enumerate(tqdm(sites, desc=name, disable=not progress)):
                for j, sigma in enumerate(sigmas):
                    index = (i, j)[-(len(axes) + 1):]
                    if run.is_done(index):  # measured before a resume
                        continue
                    for s, seed in enumerate(seeds):
                        noisy = trained[s] if not spec.noise.in_training else _noisy_model(
                            spec, seed, data, writer, checkpoints, False, sigma, site,
                            label=f"{mode}_site{i}_sigma{j}")
                        accuracy[i, j, s] = noisy.accuracy(
                            test, noise_law(spec.noise, float(sigma)), site,
                            (site + 1, j))
                    run.write_point(index, accuracy=accuracy[i, j])
                    check_stop()
            midpoints[name] = _fit_table(writer, run, name, site_names, sigmas, accuracy,
                                         spec, data.num_classes, len(data.y_test))
        if spec.guided is not None:
            _guided(spec.guided, spec, writer, trained, labels, midpoints, test, progress)
    return results_path


def _guided(guided: GuidedSpec, spec: WalkingNoiseSpec, writer: ResultsWriter,
            trained: list[_NoisyModel], labels: list[str], midpoints: dict[str, np.ndarray],
            test: tuple[torch.Tensor, torch.Tensor], progress: bool) -> None:
    """Uniform (n_i = budget) against guided (n_i ∝ 1/μ_i) at the same total; S2 Table 3."""
    mu = midpoints["layerwise_noise"].copy()
    if not np.isfinite(mu).any():
        raise SpecError("guided multi-execution needs per-layer midpoints, and no site's fit "
                        "succeeded; widen walking.sigmas")
    if not np.isfinite(mu).all():
        log.warning("sites %s have no midpoint; they get the largest μ (the fewest repetitions)",
                    [label for label, m in zip(labels, mu, strict=True) if not np.isfinite(m)])
        mu[~np.isfinite(mu)] = np.nanmax(mu)
    sigma = (float(midpoints["global_noise"][0]) if guided.sigma == GLOBAL_MIDPOINT
             else float(guided.sigma))
    if not np.isfinite(sigma) or sigma <= 0:
        raise SpecError(f"guided.sigma = {guided.sigma!r} gives σ = {sigma}; the global fit "
                        "failed: give a number")
    operators = len(labels)
    allocations = {"uniform": uniform_repetitions(operators, guided.budget),
                   "guided": allocate_repetitions(mu, guided.budget * operators)}
    run = writer.create_run(
        "guided", axes={"allocation": list(allocations),
                        "replicate": range(len(trained) * guided.repeats)},
        units={"accuracy": "fraction"},
        attrs={"kind": "guided", "sigma": sigma, "budget_total": guided.budget * operators,
               "sites": labels, "test_samples": len(test[1]),
               "repetitions_uniform": allocations["uniform"],
               "repetitions_guided": allocations["guided"], "law": spec.noise.law,
               "models": len(trained), "repeats": guided.repeats,
               **sampling_attrs(seed=len(trained), repeat=guided.repeats),
               "title": f"{spec.name}: guided vs uniform multi-execution at σ = {sigma:.3g} "
                        f"(n_t = {guided.budget * operators})"})
    law = noise_law(spec.noise, sigma)
    for a, (name, repetitions) in enumerate(allocations.items()):
        if run.is_done((a,)):
            continue
        values = []
        for noisy in tqdm(trained, desc=f"guided: {name}", disable=not progress):
            set_repetitions(noisy.operators, repetitions)
            values += [noisy.accuracy(test, law, GLOBAL, (0, a, r))
                       for r in range(guided.repeats)]
            set_repetitions(noisy.operators, [1] * operators)
        run.write_point((a,), accuracy=values)
        check_stop()
    log.info("guided multi-execution at σ = %.3g: n_i = %s", sigma, allocations["guided"])
