"""The programmed state of real-size models (issue 18): its bytes, its numbers, its round trip.

- Bytes: every buffer and cache of a programmed tile is what the formula of
  :mod:`analogsim.memory` says, per shipped card, for a layer below and one above the size
  up to which 1/f read noise's Q_s is cached.
- Numbers: programming and aging run layer by layer on blocks of instances; a second path
  computes the same state with the formulas over all K instances at once, written out in
  plain torch (the expressions the code evaluated before issue 18), and must agree bit for
  bit. Issue 18 changed two things, which the reference does too: programmed conductances
  are stored in float16 where the card's programming error dwarfs the rounding
  (:func:`device_model.conductance_dtype`; a separate test bounds the rounding), and PCM drift
  exponents come from a stream of their own, redrawn at every drift instead of stored.
- Round trip: a programmed, drifted model saved and loaded (also from the state format before
  packed targets) gives identical buffers and outputs, and drifts on identically.
- The committed docs/memory.md is the render of the committed results JSON.
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path
from unittest import mock

import pytest
import torch
from torch import nn

import analogsim as asim
from analogsim import allocator
from analogsim.conversion import analog_layers
from analogsim.errors import StateError
from analogsim.memory import layer_state_bytes
from analogsim.seeding import Purpose, make_generator, time_key
from analogsim.tiles import device_model
from analogsim.tiles.programmed import (
    STATE_BUFFERS,
    drift_exponents_of,
    pack_targets,
    unpack_targets,
)

ROOT = Path(__file__).resolve().parents[1]
CARDS = asim.list_chips()
CACHE = device_model.CACHE_DEVICES
#: (in, out) of a layer whose instance holds fewer devices than CACHE, and one with more.
SMALL, LARGE = (48, 40), (1024, 600)
assert 2 * SMALL[0] * SMALL[1] <= CACHE < 2 * LARGE[0] * LARGE[1]  # for a pair (D = 2)


def programmed_model(card: str | asim.Chip, sizes: list[tuple[int, int]], instances: int,
                     t_s: float | None = 3600.0, seed: int = 4) -> nn.Module:
    torch.manual_seed(0)
    layers = [nn.Linear(i, o) for i, o in sizes]
    model = asim.convert(nn.Sequential(*layers), card).eval()
    asim.program(model, seed=seed, instances=instances)
    if t_s is not None:
        asim.drift(model, t_s)
    return model


# ------------------------------------------------------------------------------ bytes


def storage_bytes(tensors: list[torch.Tensor | None]) -> int:
    """Bytes of the distinct storages of ``tensors`` (views of one storage count once)."""
    seen = {}
    for tensor in tensors:
        if tensor is not None and tensor.numel():
            storage = tensor.untyped_storage()
            seen[storage.data_ptr()] = storage.nbytes()
    return sum(seen.values())


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["Q_s cached", "Q_s recomputed"])
@pytest.mark.parametrize("card", CARDS, ids=CARDS)
def test_the_bytes_per_weight_of_every_card_are_the_formula(card: str, size) -> None:
    instances = 2
    model = programmed_model(card, [size], instances)
    x = torch.randn(3 * instances, size[0])
    with torch.no_grad(), asim.instances_folded(model):
        model(x)  # builds the forward plan
    tile = model[0].tile
    per_weight = [tile.g_target_packed, tile.g_programmed, tile.drift_exponents, tile.faults,
                  tile.w_effective, tile.q_effective, tile.read_noise_q, *tile.plan.matrices,
                  *tile.plan.q, tile.plan.exact]
    weights = size[0] * size[1]
    fixed, per_instance = layer_state_bytes(tile.chip, weights)
    assert storage_bytes(per_weight) == fixed + instances * per_instance


def test_a_differential_pair_card_holds_what_the_documented_formula_says() -> None:
    # pcm, a layer above the cache size, K = 3: once the packed targets (4 B per weight); per
    # instance two float16 conductances (2 × 2 B), no drift exponents (redrawn), the weights
    # the MVM sees (4 B) and, once a forward ran, the plan's matrix (4 B).
    instances, (rows, out) = 3, LARGE
    model = programmed_model("pcm", [LARGE], instances, t_s=86400.0)
    tile, weights = model[0].tile, rows * out
    state = {name: getattr(tile, name).nbytes for name in STATE_BUFFERS}
    assert state["g_target_packed"] == 4 * weights
    assert state["g_programmed"] == instances * 2 * 2 * weights
    assert state["drift_exponents"] == 0
    assert state["w_effective"] == instances * 4 * weights
    assert state["faults"] == state["q_effective"] == 0
    assert tile.read_noise_q is None  # 2 × 600 × 1024 devices per instance: not cached
    small = sum(state[name] for name in ("instance_ids", "program_seed", "t_inference",
                                         "weight_scale", "compensation_reference",
                                         "compensation_factor"))
    chunks = len(tile.layout.row_chunks)
    assert small <= 16 * instances * chunks * out  # a few floats per output and tile
    assert layer_state_bytes(tile.chip, weights) == (4 * weights, (8 + 4) * weights)


# ------------------------------------------------------------------------------ numbers


def normals(shape: tuple[int, ...], generators: list[torch.Generator]) -> torch.Tensor:
    out = torch.empty(shape)
    for block, generator in zip(out.chunk(len(generators)), generators, strict=True):
        block.normal_(generator=generator)
    return out


def each_instance(op, x: torch.Tensor, *args) -> torch.Tensor:
    out = torch.empty_like(x)
    for x_k, out_k in zip(x, out, strict=True):
        op(x_k, *args, out=out_k)
    return out


def polynomial_std(g: torch.Tensor, coefficients, g_max: float, reference: float):
    x = g / g_max
    value = torch.full_like(x, float(coefficients[-1]))
    for c in reversed(coefficients[:-1]):
        value = value * x + c
    return (value * (g_max / reference)).clamp(min=0.0)


def reference_pcm(tile, weight: torch.Tensor, seed: int, instances: int, t_s: float):
    """The pcm card's programming and aging of one layer over all K instances at once, as
    plain torch expressions: (targets, g_programmed, exponents, w_effective at t_s)."""
    chip, k = tile.chip, instances
    cond, law, drift, read = chip.conductance, chip.programming, chip.drift, chip.read_noise
    span, layer = cond.g_max_uS - cond.g_min_uS, tile.layer_index
    w_n = weight.detach() / tile.layout.expand_rows(tile.weight_scale)
    g_t = torch.stack([w_n.clamp(0, 1), (-w_n).clamp(0, 1)]) * span + cond.g_min_uS
    targets = g_t.expand(k, *g_t.shape)
    gens = [make_generator(seed, Purpose.PROGRAM, layer, i) for i in range(k)]
    std = polynomial_std(targets, law.coefficients_uS, cond.g_max_uS, law.reference_g_max_uS)
    g_p = (targets + law.scale * std * normals(targets.shape, gens)).clamp(min=0.0).half()
    log_g = torch.log((g_t.abs() / cond.g_max_uS).clamp(min=drift.g_rel_min))
    mean = (drift.mean_slope * log_g + drift.mean_offset).clamp(drift.mean_min, drift.mean_max)
    sd = (drift.std_slope * log_g + drift.std_offset).clamp(drift.std_min, drift.std_max)
    gens = [make_generator(seed, Purpose.DRIFT_EXPONENTS, layer, i) for i in range(k)]
    nu = (mean.expand_as(targets) + sd.expand_as(targets) * normals(targets.shape, gens)).abs()
    nu = nu * drift.scale
    gens = [make_generator(seed, Purpose.DRIFT, layer, i, time_key(t_s)) for i in range(k)]
    decay = each_instance(torch.exp, nu * -math.log((t_s + drift.t0_s) / drift.t0_s))
    g_d = g_p.float() * decay
    power = each_instance(torch.pow, g_p.float().abs() / cond.g_max_uS, read.q_exponent)
    q_s = (read.q_coefficient / power.clamp(min=read.q_floor)).clamp(max=read.q_max)
    factor = math.sqrt(math.log((t_s + read.t0_s + read.t_read_s) / (2 * read.t_read_s)))
    std = g_d.abs() * q_s * factor
    g_r = (g_d + read.scale * std * normals(g_d.shape, gens)).clamp(min=0.0)
    return g_t, g_p, nu, (g_r[:, 0] - g_r[:, 1]) / span


def test_pcm_layer_by_layer_equals_the_all_at_once_formulas() -> None:
    # Two layers: one instance per block with Q_s recomputed (LARGE), and all K in one block
    # with Q_s cached (SMALL); K = 3.
    seed, instances, t_s = 6, 3, 86400.0
    model = programmed_model("pcm", [LARGE, (LARGE[1], SMALL[1])], instances, None, seed)
    references = [reference_pcm(layer.tile, layer.weight, seed, instances, t_s)
                  for _, layer in analog_layers(model)]
    asim.drift(model, t_s)
    for (_, layer), (g_t, g_p, nu, w_t) in zip(analog_layers(model), references, strict=True):
        tile = layer.tile
        assert torch.equal(unpack_targets(tile.chip, tile.g_target_packed), g_t)
        assert tile.g_programmed.dtype == torch.float16
        assert torch.equal(tile.g_programmed, g_p)
        small = 2 * layer.weight.numel() <= CACHE  # its exponents cached, else redrawn
        assert bool(tile.drift_exponents.numel()) == small
        assert torch.equal(drift_exponents_of(tile), nu)
        assert torch.equal(tile.w_effective, w_t)


def test_rram_relaxation_and_generic_faults_equal_the_all_at_once_formulas() -> None:
    seed, instances, t_s = 2, 3, 3e5  # past rram's last measured time: its last polynomial
    rram = programmed_model("rram", [LARGE], instances, None, seed)
    tile = rram[0].tile
    chip, span = tile.chip, tile.chip.conductance.g_max_uS
    law, drift = chip.programming, chip.drift
    g_t = unpack_targets(chip, tile.g_target_packed)
    gens = [make_generator(seed, Purpose.PROGRAM, 0, i) for i in range(instances)]
    targets = g_t.expand(instances, *g_t.shape)
    std = polynomial_std(targets, law.coefficients_uS, span, law.reference_g_max_uS)
    g_p = (targets + law.scale * std * normals(targets.shape, gens)).clamp(min=0.0)
    assert tile.g_programmed.dtype == torch.float32  # its error falls to ~0 near 10 µS
    assert torch.equal(tile.g_programmed, g_p)
    total = polynomial_std(g_t, drift.coefficients_uS[-1], span, drift.reference_g_max_uS)**2
    programmed = polynomial_std(g_t, law.coefficients_uS, span, law.reference_g_max_uS)
    extra = (total * drift.scale**2 - (programmed * law.scale)**2).clamp(min=0.0).sqrt()
    gens = [make_generator(seed, Purpose.DRIFT, 0, i, time_key(t_s)) for i in range(instances)]
    g_r = (g_p + extra * normals(g_p.shape, gens)).clamp(min=0.0)
    asim.drift(rram, t_s)
    assert torch.equal(tile.w_effective, (g_r[:, 0] - g_r[:, 1]) / span)

    generic = programmed_model("generic", [LARGE], instances, None, seed)
    tile = generic[0].tile
    chip = tile.chip
    cond, law, faults = chip.conductance, chip.programming, chip.faults
    g_t = unpack_targets(chip, tile.g_target_packed)
    targets = g_t.expand(instances, *g_t.shape)
    gens = [make_generator(seed, Purpose.PROGRAM, 0, i) for i in range(instances)]
    additive = normals(targets.shape, gens) * (law.additive_std * (cond.g_max_uS - cond.g_min_uS))
    relative = normals(targets.shape, gens) * law.multiplicative_std
    g_p = targets + additive + targets * relative
    u = torch.empty(targets.shape)
    for block, generator in zip(u.chunk(instances), gens, strict=True):
        block.uniform_(generator=generator)
    low = u < faults.stuck_low_fraction
    high = (u >= faults.stuck_low_fraction) & (
        u < faults.stuck_low_fraction + faults.stuck_high_fraction)
    g_p = torch.where(low, torch.full_like(g_p, cond.g_min_uS), g_p)
    g_p = torch.where(high, torch.full_like(g_p, cond.g_max_uS), g_p)
    assert torch.equal(tile.faults, low.to(torch.uint8) + 2 * high.to(torch.uint8))
    assert torch.equal(tile.g_programmed, g_p.half())


def test_exact_programming_shares_the_targets_across_instances() -> None:
    tile = programmed_model("ideal", [SMALL], 4)[0].tile
    assert tile.g_programmed.stride(0) == 0  # one storage for every instance
    assert torch.equal(tile.g_programmed[3], unpack_targets(tile.chip, tile.g_target_packed))


def test_float16_conductances_are_rounded_within_half_their_spacing() -> None:
    # float16 keeps 11 significant bits: |g16 − g| ≤ 2⁻¹¹ |g| for normal numbers, ≤ 2⁻²⁵
    # below 2⁻¹⁴; aging then works on the rounded values in float32.
    chip = asim.load_chip("pcm", read_noise_law="none")
    weight = torch.randn(256, 512, generator=make_generator(3))

    def programmed() -> device_model.ProgrammedDevices:
        generators = [make_generator(1, k) for k in range(2)]
        return device_model.program_devices(chip, weight / weight.abs().max(), generators,
                                            device_model.exponent_seeds(1, 0, [0, 1]))

    half = programmed()
    with mock.patch.object(device_model, "CONDUCTANCE_STORAGE", torch.float32):
        single = programmed()
    assert (half.g_programmed.dtype, single.g_programmed.dtype) == (torch.float16, torch.float32)
    g, g16 = single.g_programmed.double(), half.g_programmed.double()
    assert ((g16 - g).abs() <= torch.clamp(g.abs() * 2.0**-11, min=2.0**-25)).all()
    aged = device_model.age_devices(chip, half, 3600.0, [make_generator(2, k) for k in range(2)])
    assert aged.dtype == torch.float32


def test_float16_is_kept_only_where_the_programming_error_dwarfs_its_rounding() -> None:
    # The rule of conductance_dtype: rounding std u/√12 ≤ 5 % of the smallest programming
    # error std, u = float16's spacing below 2 g_max (2⁻⁵ µS for g_max = 25 µS).
    pcm = asim.load_chip("pcm")
    spacing = 2.0**-5
    smallest = 0.26348 * pcm.programming.scale  # σ_prog(0) = c0, the polynomial's least
    assert spacing / math.sqrt(12) <= 0.05 * smallest
    assert device_model.conductance_dtype(pcm) == torch.float16
    barely = spacing / math.sqrt(12) / 0.05 / 0.26348  # the scale where the rule flips
    assert device_model.conductance_dtype(
        asim.load_chip("pcm", programming_scale=barely * 1.01)) == torch.float16
    assert device_model.conductance_dtype(
        asim.load_chip("pcm", programming_scale=barely * 0.99)) == torch.float32
    assert device_model.conductance_dtype(
        asim.load_chip("pcm", programming_law="none")) == torch.float32
    assert device_model.conductance_dtype(asim.load_chip("rram")) == torch.float32


# ------------------------------------------------------------------------------ targets


@pytest.mark.parametrize("overrides", [{}, {"conductance_g_min_uS": 2.0},
                                       {"conductance_levels": 9, "conductance_g_min_uS": 0.5},
                                       {"conductance_pair": "single"}],
                         ids=["pcm", "g_min 2", "levels", "single"])
def test_packed_targets_unpack_bit_for_bit(overrides) -> None:
    chip = asim.load_chip("pcm", **overrides)
    w = torch.cat([torch.randn(63, 31, generator=make_generator(5)), torch.zeros(1, 31)])
    w[0, :3] = torch.tensor([1e-45, -1e-45, -0.0])
    g = device_model.target_conductances(chip, (w / w.abs().max()).clamp(-1, 1))
    packed = pack_targets(chip, g)
    assert packed.shape == w.shape
    restored = unpack_targets(chip, packed)
    assert restored.dtype == g.dtype and torch.equal(restored, g)
    assert torch.equal(restored.view(torch.int32), g.view(torch.int32))  # signs of zeros too


def test_targets_without_an_idle_device_are_refused() -> None:
    with pytest.raises(StateError, match=r"neither device of a pair at g_min = 0 µS"):
        pack_targets(asim.load_chip("pcm"), torch.full((2, 3, 4), 5.0))


# ------------------------------------------------------------------------------ round trip


def outputs(model: nn.Module, instances: int) -> torch.Tensor:
    x = torch.randn(5, SMALL[0], generator=make_generator(8)).repeat(instances, 1)
    with torch.no_grad(), asim.instances_folded(model):
        return model(x)


@pytest.mark.parametrize("card", CARDS, ids=CARDS)
def test_a_saved_programmed_model_loads_and_drifts_identically(card: str, tmp_path) -> None:
    model = programmed_model(card, [SMALL, (SMALL[1], 10)], 3)
    torch.save(model.state_dict(), tmp_path / "model.pt")
    restored = asim.convert(nn.Sequential(nn.Linear(*SMALL), nn.Linear(SMALL[1], 10)), "ideal")
    restored.load_state_dict(torch.load(tmp_path / "model.pt", weights_only=True))
    restored.eval()
    for (_, a), (_, b) in zip(analog_layers(model), analog_layers(restored), strict=True):
        for name in STATE_BUFFERS:
            assert torch.equal(getattr(a.tile, name), getattr(b.tile, name)), name
            assert getattr(a.tile, name).dtype == getattr(b.tile, name).dtype, name
    assert torch.equal(outputs(model, 3), outputs(restored, 3))
    asim.drift(model, 1e6)
    asim.drift(restored, 1e6)
    assert torch.equal(outputs(model, 3), outputs(restored, 3))


def test_a_state_saved_with_stored_drift_exponents_drifts_with_them() -> None:
    # The format before exponents were redrawn: float16 drift_exponents in the state. Saved
    # exponents of 0 (no drift) must be what the loaded tile ages with.
    no_noise = asim.load_chip("pcm", programming_law="none", read_noise_law="none")
    model = programmed_model(no_noise, [SMALL], 2, t_s=None)
    state = model.state_dict()
    state["0.tile.drift_exponents"] = torch.zeros(2, 2, *reversed(SMALL), dtype=torch.float16)
    restored = asim.convert(nn.Sequential(nn.Linear(*SMALL)), "ideal").eval()
    restored.load_state_dict(state)
    programmed_w = restored[0].tile.w_effective.clone()
    asim.drift(restored, 1e6)
    asim.drift(model, 1e6)
    assert torch.equal(restored[0].tile.w_effective, programmed_w)
    assert not torch.equal(model[0].tile.w_effective, programmed_w)


def test_a_state_saved_before_packed_targets_loads() -> None:
    # The format before issue 18: g_target (D, out, rows), float32 drift exponents.
    model = programmed_model("rram", [SMALL], 2)  # rram's drift reads the targets
    state = model.state_dict()
    tile = model[0].tile
    state["0.tile.g_target"] = unpack_targets(tile.chip, state.pop("0.tile.g_target_packed"))
    restored = asim.convert(nn.Sequential(nn.Linear(*SMALL)), "ideal").eval()
    restored.load_state_dict(state)
    assert torch.equal(restored[0].tile.g_target_packed, tile.g_target_packed)
    asim.drift(model, 1e6)
    asim.drift(restored, 1e6)
    assert torch.equal(outputs(model, 2), outputs(restored, 2))


# ------------------------------------------------------------------------------ the page


def test_the_committed_memory_page_is_the_render_of_its_results() -> None:
    path = ROOT / "benchmarks" / "memory_per_weight.py"
    spec = importlib.util.spec_from_file_location("memory_per_weight", path)
    script = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = script
    spec.loader.exec_module(script)
    results = json.loads(script.RESULTS.read_text())
    assert set(results["cards"]) == set(CARDS)
    assert script.PAGE.read_text() == script.render(results), (
        "docs/memory.md is stale: run python benchmarks/memory_per_weight.py --docs-only")


# ------------------------------------------------------------------------------ the heap


def test_large_layers_return_the_heap_after_program_and_drift(monkeypatch) -> None:
    # glibc keeps freed temporaries in holes between the kept state (aging GPT-2 small peaked
    # at twice its state): layers of ≥ TRIM_WEIGHTS weights × instances trim the heap.
    assert allocator._glibc() is not None  # this machine runs glibc
    trims = []
    fake = mock.Mock(malloc_trim=trims.append)
    monkeypatch.setattr(allocator, "_glibc", lambda: fake)
    instances = -(-allocator.TRIM_WEIGHTS // (LARGE[0] * LARGE[1]))  # the least that trims
    model = programmed_model("pcm", [LARGE, (LARGE[1], SMALL[1])], instances, t_s=None)
    assert trims == [0]  # the large layer only
    asim.drift(model, 60.0)
    assert trims == [0, 0]
    asim.program(model, seed=1, instances=instances - 1)  # below: no trim
    assert trims == [0, 0]
