"""Claims stated in specs, judged by code over training seeds; sweeps over several seeds; the
reproduction page regenerated from its summaries."""

from __future__ import annotations

import importlib.util
import json
import sys
import tomllib
from pathlib import Path

import h5py
import numpy as np
import pytest
import tomli_w

import analogsim as asim
from analogsim.claims import (
    FAILS,
    HOLDS,
    NO_DATA,
    UNRESOLVED,
    evaluate_claims,
    parse_claims,
    per_seed,
)
from analogsim.errors import SpecError
from analogsim.experiments.run import run_spec
from analogsim.experiments.spec import load_spec
from analogsim.results import Results, RunData
from analogsim.sampling import sampling_attrs

REPRODUCE = Path(__file__).resolve().parents[1] / "benchmarks" / "reproduce"


def reproduce_module(name: str):
    spec = importlib.util.spec_from_file_location(f"reproduce_{name}", REPRODUCE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def sweep_results(accuracy: np.ndarray, digital: list[float]) -> Results:
    """A sweep run accuracy[scheme, noise, time, seed × chip] as a results file reads back."""
    seeds, chips = len(digital), accuracy.shape[-1] // len(digital)
    run = RunData(
        name="sweep", axes={"scheme": np.array(["none", "sign"], dtype=object),
                            "noise": np.array([1.0, 2.0, 4.0, 8.0]), "time": np.array([0.0]),
                            "replicate": np.arange(seeds * chips)},
        units={"noise": "×", "time": "s"}, data={"accuracy": accuracy},
        dims={"accuracy": ("scheme", "noise", "time", "replicate")},
        done=np.ones((2, 4), bool),
        attrs={**sampling_attrs(seed=seeds, instance=chips), "digital_accuracy":
               float(np.mean(digital)), "digital_accuracy_per_seed": digital})
    return Results(Path("synthetic.h5"), {}, {}, {"sweep": run})


def claim(test: str, **fields) -> dict:
    return {"id": "c", "claim": "a claim", "test": test, **fields}


TOLERANCE = {"run": "sweep", "tolerance": "noise"}


@pytest.fixture
def three_seeds() -> Results:
    # per seed: "none" falls below 1 pp of 0.96 at noise 4 (seed 2: at 2), "sign" at 8
    accuracy = np.full((2, 4, 1, 3 * 5), 0.96)
    accuracy[0, 2:, 0, :] = 0.90
    accuracy[0, 1, 0, 10:] = 0.90  # seed 2's chips
    accuracy[1, 3, 0, :] = 0.90
    return sweep_results(accuracy, [0.96, 0.96, 0.96])


def test_tolerance_is_read_per_seed_against_that_seeds_digital_accuracy(three_seeds):
    none = per_seed(three_seeds, {**TOLERANCE, "at": {"scheme": "none", "time": 0}})[0]
    sign = per_seed(three_seeds, {**TOLERANCE, "at": {"scheme": "sign", "time": 0}})[0]
    np.testing.assert_array_equal(none, [2.0, 2.0, 1.0])
    np.testing.assert_array_equal(sign, [4.0, 4.0, 4.0])


def test_verdicts_follow_the_paired_interval_over_seeds(three_seeds):
    at = {"time": 0}
    sign = {**TOLERANCE, "at": {**at, "scheme": "sign"}}
    none = {**TOLERANCE, "at": {**at, "scheme": "none"}}
    claims = parse_claims([
        # ratios 2, 2, 4: above 1.5 in every seed, but t over 3 seeds (t = 4.30) reaches
        # below it: with three trained models that is not resolved
        claim("ratio_at_least", value=1.5, a=sign, b=none),
        claim("greater", a=none, b=sign),  # differences −2, −2, −3: CI [−3.8, −0.9]
        claim("increasing", quantities=[none, sign]),  # 2, 2, 3: CI [0.9, 3.8]
        claim("within", value=0.5, a=none, b=none),
    ], "spec")
    verdicts = evaluate_claims(three_seeds, claims)
    assert [v.verdict for v in verdicts] == [UNRESOLVED, FAILS, HOLDS, HOLDS]
    # the "none" tolerance differs between seeds by one grid step: said, not hidden
    assert any("1 grid step" in note for note in verdicts[0].notes)


def test_a_quantity_without_data_gives_no_verdict(three_seeds):
    three_seeds.runs["sweep"].data["accuracy"][1] = np.nan  # "sign" never evaluated
    sign = {"run": "sweep", "at": {"time": 0, "scheme": "sign", "noise": 1}}
    none = {"run": "sweep", "at": {"time": 0, "scheme": "none", "noise": 1}}
    verdict, = evaluate_claims(three_seeds, parse_claims([claim("greater", a=sign, b=none)],
                                                         "spec"))
    assert verdict.verdict == NO_DATA


def test_one_seed_is_judged_by_its_means_and_says_so():
    accuracy = np.full((2, 4, 1, 5), 0.96)
    accuracy[0, 2:] = 0.5
    results = sweep_results(accuracy, [0.96])
    sign = {**TOLERANCE, "at": {"time": 0, "scheme": "sign"}}
    none = {**TOLERANCE, "at": {"time": 0, "scheme": "none"}}
    verdict, = evaluate_claims(results, parse_claims(
        [claim("greater", a=sign, b=none)], "spec"))
    assert verdict.verdict == HOLDS and any("one seed" in n for n in verdict.notes)


@pytest.mark.parametrize(("table", "message"), [
    ({"id": "x", "claim": "y", "test": "bigger"}, r"test must be one of"),
    (claim("greater", a={"run": "sweep"}), r"needs a and b"),
    (claim("ratio_at_least", a={"run": "s"}, b={"run": "s"}), r"needs a number \(value\)"),
    (claim("greater", a={"run": "s"}, b={"run": "s"}, colour="red"), r"unknown key 'colour'"),
])
def test_malformed_claims_fail_when_the_spec_is_read(table, message):
    with pytest.raises(SpecError, match=message):
        parse_claims([table], "spec.toml")


def test_a_quantity_must_fix_every_varying_axis(three_seeds):
    with pytest.raises(SpecError, match=r"fixes no value of the axis 'scheme'"):
        per_seed(three_seeds, TOLERANCE)


SPEC = """
[experiment]
name = "seeds_sweep"
kind = "sweep"

[data]
dataset = "digits"

[model]
name = "mlp"
options = {{ in_features = 64, hidden = [32], num_classes = 10 }}

[training]
epochs = 3
batch_size = 64
optimizer = "adam"
learning_rate = 0.01
seeds = {seeds}

[chip]
card = "pcm"

[sweep]
instances = 3
times_s = [1]

[[sweep.axes]]
field = "read_noise.scale"
values = [1, 16]
mode = "scale"

[[claims]]
id = "noise_hurts"
claim = "more read noise costs accuracy"
paper = "—"
test = "greater"
a = {{ run = "sweep", at = {{ "read_noise.scale" = 1 }} }}
b = {{ run = "sweep", at = {{ "read_noise.scale" = 16 }} }}
"""


def test_a_sweep_over_seeds_trains_each_and_keeps_seed_zero_as_alone(tmp_path):
    one, two = tmp_path / "one.toml", tmp_path / "two.toml"
    one.write_text(SPEC.format(seeds="[0]"))
    two.write_text(SPEC.format(seeds="[0, 1]"))
    alone = asim.load_results(run_spec(load_spec(one), tmp_path / "one.h5")).runs["sweep"]
    both = asim.load_results(run_spec(load_spec(two), tmp_path / "two.h5")).runs["sweep"]
    assert alone.dims["accuracy"][-1] == "instance" and both.dims["accuracy"][-1] == "replicate"
    assert both.data["accuracy"].shape == (2, 1, 6) and both.done.all()
    # seed 0's chips are the same numbers alone and beside seed 1; seed 1 is another model
    np.testing.assert_array_equal(both.data["accuracy"][..., :3], alone.data["accuracy"])
    assert not np.array_equal(both.data["accuracy"][..., 3:], alone.data["accuracy"])
    assert len(both.attrs["digital_accuracy_per_seed"]) == 2
    assert list(both.attrs["sample_axes"]) == ["seed", "instance"]


def test_the_reproduction_pipeline_summarises_judges_and_renders(tmp_path):
    spec = tmp_path / "seeds_sweep.toml"
    spec.write_text(SPEC.format(seeds="[0, 1, 2]"))
    results = run_spec(load_spec(spec), tmp_path / "seeds_sweep.h5")
    summarize, page = reproduce_module("summarize"), reproduce_module("page")
    written = summarize.write_summary(results, tmp_path / "summaries")
    summary = json.loads(written.read_text())
    verdict, = summary["claims"]
    assert verdict["verdict"] == HOLDS  # 16× the pcm read noise is far worse, in every seed
    point = summary["runs"]["sweep"]["points"][0]
    assert point["unit"] == "seeds" and point["n"] == 3 and "3 seeds × 3 chips" in point["detail"]
    text = page.render("{{table seeds_sweep sweep rows=read_noise.scale columns=time}}\n"
                       "{{claims seeds_sweep}}", page.load_summaries(tmp_path / "summaries"))
    assert "more read noise costs accuracy" in text and "| holds |" in text
    assert "over seeds (n = 3 seeds × 3 chips)" in text


def test_the_committed_pages_are_what_their_summaries_give():
    page = reproduce_module("page")
    stale = page.stale_pages(page.load_summaries())
    assert not stale, f"{stale} stale: run python benchmarks/reproduce/page.py"


#: Reproduction specs the reduced run leaves out → the reduced spec that stands in for them:
#: the same kind of run, methods and claims on another model, recipe or noise law. One
#: ResNet-20 epoch on mnist5k takes minutes (the model itself is tested in test_models); the
#: S1 recipe variants differ from S1 in weight decay, epochs or input scaling only; S2's 22
#: walking-noise specs fall into four shapes (noise-trained global; inference-only additive
#: with layer-wise noise and guided repetitions; inference-only multiplicative layer-wise;
#: inference-only global in the -BN-noNoise placement), each run once, and the site labels
#: every S2 claim names are checked against its model below.
_S2_STAND_INS = {
    "s2_t1_mlp_add": ["s2_t1_mlp_mul", "s2_t1_mlp_bn_add", "s2_t1_mlp_bn_mul",
                      "s2_t1_mlp_add_100ep", "s2_t1_lenet_add", "s2_t1_lenet_mul",
                      "s2_t1_lenet_bn_add", "s2_t1_lenet_bn_mul", "s2_t1_lenet_add_50ep"],
    "s2_inf_mlp_add": ["s2_inf_mlp_bn_add", "s2_inf_lenet_add", "s2_inf_lenet_bn_add"],
    "s2_inf_mlp_mul": ["s2_inf_mlp_bn_mul", "s2_inf_lenet_mul", "s2_inf_lenet_bn_mul"],
    "s2_inf_mlp_bn_nonoise_mul": ["s2_inf_mlp_bn_nonoise_add", "s2_inf_lenet_bn_nonoise_add",
                                  "s2_inf_lenet_bn_nonoise_mul"]}
NOT_REDUCED = {"s0_noise_aware_sam_resnet20": "s0_noise_aware_sam_10ep",
               "s1_incorruptible_no_wd": "s1_incorruptible",
               "s1_incorruptible_30ep": "s1_incorruptible",
               "s1_incorruptible_30ep_standardized": "s1_incorruptible",
               **{left_out: stand_in for stand_in, left_outs in _S2_STAND_INS.items()
                  for left_out in left_outs}}
CLAIMED_SPECS = sorted(path for path in REPRODUCE.glob("*.toml")
                       if "[[claims]]" in path.read_text(encoding="utf-8")
                       and path.stem not in NOT_REDUCED)


def reduced(data: dict) -> dict:
    """A reproduction spec cut to seconds: one epoch, at most two seeds, one chip or draw per
    point, of a methods spec's attack only the σ its claims name, and of a text corpus a few
    short sequences; axes, methods and claims as committed."""
    data["training"].update(epochs=1, seeds=data["training"]["seeds"][:2])
    if data["data"]["dataset"] == "stdlib_text":
        data["data"].setdefault("options", {}).update(train_sequences=256, test_sequences=32)
    if "walking" in data:  # five noise levels across the grid (a logistic fit has four
        # parameters), one guided repeat
        grid = data["walking"]["sigmas"]
        if isinstance(grid, dict):
            start, stop, _ = grid["logspace"]
            data["walking"]["sigmas"] = {"logspace": [start, stop, 5]}
        else:
            data["walking"]["sigmas"] = [grid[i * (len(grid) - 1) // 4] for i in range(5)]
        if "guided" in data:
            data["guided"]["repeats"] = 1
    if "sweep" in data:
        data["sweep"]["instances"] = 1
    if "evaluation" in data:
        named = {q["at"]["sigma"] for c in data["claims"]
                 for q in [c.get("a", {}), c.get("b", {}), *c.get("quantities", [])]
                 if q.get("run") == "attack" and "sigma" in q.get("at", {})}
        data["evaluation"].update(attack_draws=1, chip_instances=1,
                                  attack_sigmas=sorted(named) or [0.0])
    return data


@pytest.mark.slow
@pytest.mark.parametrize("path", CLAIMED_SPECS, ids=lambda p: p.stem)
def test_each_reproduction_spec_runs_reduced_through_its_claims(path, tmp_path):
    # the whole pipeline (train, evaluate, summary, every claim judged) on the spec's real
    # axes, methods and claims
    data = reduced(tomllib.loads(path.read_text(encoding="utf-8")))
    spec = tmp_path / path.name
    spec.write_text(tomli_w.dumps(data), encoding="utf-8")
    results = run_spec(load_spec(spec), tmp_path / f"{path.stem}.h5")
    summary = reproduce_module("summarize").summarize(results)
    assert len(summary["claims"]) == len(data["claims"]) > 0
    assert {c["verdict"] for c in summary["claims"]} <= {HOLDS, FAILS, UNRESOLVED, NO_DATA}


def claim_shape(claim: dict) -> tuple:
    """What a claim tests and on which runs and metrics, without the points or constants."""
    quantities = [claim.get("a"), claim.get("b"), *claim.get("quantities", [])]
    return claim["id"], claim["test"], [(q.get("run"), q.get("metric"), sorted(q.get("at", {})))
                                        for q in quantities if q]


@pytest.mark.parametrize(("left_out", "stand_in"), NOT_REDUCED.items())
def test_a_spec_left_out_of_the_reduced_runs_has_a_stand_in(left_out, stand_in):
    specs = [tomllib.loads((REPRODUCE / f"{name}.toml").read_text(encoding="utf-8"))
             for name in (left_out, stand_in)]
    assert specs[0]["experiment"]["kind"] == specs[1]["experiment"]["kind"]
    assert ("guided" in specs[0]) == ("guided" in specs[1])
    assert specs[0].get("walking", {}).get("layerwise") == specs[1].get("walking", {}).get(
        "layerwise")
    # the same methods by label and kind (a recipe variant may shorten a ramp), the same claims
    methods = [[(m.get("label"), m["kind"]) for m in spec.get("methods", [])] for spec in specs]
    assert methods[0] == methods[1]
    assert ([claim_shape(c) for c in specs[0]["claims"]]
            == [claim_shape(c) for c in specs[1]["claims"]])


@pytest.mark.parametrize("path", sorted(REPRODUCE.glob("s2_*.toml")), ids=lambda p: p.stem)
def test_every_site_an_s2_claim_names_is_a_noise_site_of_its_model(path):
    from analogsim import models
    from analogsim.experiments.walking_noise import site_labels
    from analogsim.profiling import noise_sites

    spec = tomllib.loads(path.read_text(encoding="utf-8"))
    model = models.create(spec["model"]["name"], **spec["model"].get("options", {}))
    skip = spec["noise"].get("skip_batchnorm", False)
    labels = site_labels(model, noise_sites(model, skip_batchnorm=skip), skip)
    named = {q["at"]["site"] for c in spec["claims"] for q in (c.get("a"), c.get("b"))
             if "site" in q.get("at", {})}
    assert named <= set(labels), f"{sorted(named - set(labels))} are not among {labels}"


def test_claims_across_specs_are_judged_as_independent_samples(tmp_path):
    page = reproduce_module("page")
    (tmp_path / "pair.toml").write_text('''
[[claims]]
id = "a_above_b"
claim = "a above b"
test = "greater"
a = { summary = "high", run = "global_noise", site = "global" }
b = { summary = "low", run = "global_noise", site = "global" }
''')

    def summary(per_seed: list[float]) -> dict:
        return {"midpoints": {"global_noise": {"sites": {"global": {"mu_per_seed": per_seed}}}}}

    # seed by seed the differences are 0.5, 0.5, 0.5: paired, that would be certain; as
    # independent samples the spread within each spec (±1) leaves it unresolved
    spread = {"high": summary([1.5, 2.5, 3.5]), "low": summary([1.0, 2.0, 3.0])}
    assert "| not resolved |" in page.across("pair", spread, tmp_path)
    apart = {"high": summary([5.0, 5.1, 4.9]), "low": summary([1.0, 2.0, 3.0])}
    assert "| holds |" in page.across("pair", apart, tmp_path)
    assert "| does not hold |" in page.across("pair", {"high": apart["low"],
                                                        "low": apart["high"]}, tmp_path)


def test_the_page_says_when_a_spec_has_not_run_and_refuses_a_name_that_is_no_spec():
    page = reproduce_module("page")
    assert "not run yet" in page.render("{{claims s2_t1_mlp_add}}", {})
    assert page.render("{{setting s2_t1_mlp_add training.epochs}}", {}) == str(
        tomllib.loads((REPRODUCE / "s2_t1_mlp_add.toml").read_text())["training"]["epochs"])
    with pytest.raises(KeyError, match="no spec"):
        page.render("{{claims s2_t1_mlp_ad}}", {})


def test_a_run_that_resumed_its_trainings_is_not_summarised(tmp_path):
    # Its wall time leaves out the trainings made before: refused, not understated.
    spec = tmp_path / "seeds_sweep.toml"
    spec.write_text(SPEC.format(seeds="[0]"))
    summarize = reproduce_module("summarize")
    results = run_spec(load_spec(spec), tmp_path / "seeds_sweep.h5")
    summarize.summarize(results)  # trained in this run: summarised
    with h5py.File(results, "r+") as f:  # as if its epochs had run before it started
        f.attrs["finished"] = f.attrs["started"]
        for name, run in f["runs"].items():
            if name.startswith("train_"):
                run["seconds"][...] = 30.0  # s per epoch, beyond the stamps' second
    with pytest.raises(SystemExit, match=r"resumed trainings made earlier .* remove the "
                                         r"checkpoints \(seeds_sweep.h5.checkpoints"):
        summarize.summarize(results)
