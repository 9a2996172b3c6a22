"""The bad-input corpus: every case gets one clear line naming the thing, the value and what
was expected, exit code 2 at the CLI, and no traceback.

Text cases live in tests/bad_inputs/ (cards/ and specs/), each with its expected message on
its first line (``# expect: <regex>``); a card case is run through a sweep spec that names it.
Binary cases (model weights, data files, results files) are built here, in the formats the
readers take, and broken on purpose.
"""

from __future__ import annotations

import pickle
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
import torch
from cli_check import one_line_exit_2
from test_data import write_idx, write_mnist_folder

from analogsim import models
from analogsim.results import FORMAT, FORMAT_VERSION, ResultsWriter

CORPUS = Path(__file__).parent / "bad_inputs"
BASE_SPEC = (CORPUS / "base_spec.toml.txt").read_text()


def expected(path: Path) -> str:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# expect: "), f"{path} lacks its '# expect:' line"
    return first.removeprefix("# expect: ")


def run_argv(spec: Path, tmp_path: Path) -> list[str]:
    return ["run", str(spec), "--quiet", "-o", str(tmp_path / "out.h5"), "--report",
            str(tmp_path / "report")]


@pytest.mark.parametrize("card", sorted((CORPUS / "cards").glob("*.toml")), ids=lambda p: p.stem)
def test_bad_card(card, tmp_path, capsys):
    spec = tmp_path / "spec.toml"
    spec.write_text(BASE_SPEC.replace('card = "pcm"', f'card = "{card}"'))
    one_line_exit_2(run_argv(spec, tmp_path), expected(card), capsys)


@pytest.mark.parametrize("spec", sorted((CORPUS / "specs").glob("*.toml")), ids=lambda p: p.stem)
def test_bad_spec(spec, tmp_path, capsys):
    one_line_exit_2(run_argv(spec, tmp_path), expected(spec), capsys)


# ------------------------------------------------------------------ binary cases, built here


def _weights(folder: Path, state: object) -> str:
    torch.save(state, folder / "weights.pt")
    return 'checkpoint = "weights.pt"\n'


def nan_weights(folder: Path) -> tuple[str, str]:
    model = models.create("mlp", in_features=64, hidden=(16,), num_classes=10)
    state = model.state_dict()
    state["1.weight"][0, 0] = float("nan")
    return (BASE_SPEC.replace("[training]\nepochs = 1\n", "").replace(
        '[model]\n', "[model]\n" + _weights(folder, state)),
        r"layer .1. has NaN or infinite values in 'weight'")


def weights_of_another_model(folder: Path) -> tuple[str, str]:
    state = models.create("mlp", in_features=64, hidden=(32,), num_classes=10).state_dict()
    return (BASE_SPEC.replace('[model]\n', "[model]\n" + _weights(folder, state)),
            r"model.checkpoint .*weights.pt: not a state_dict of this model \(size mismatch")


class Payload:
    """Not tensors: torch.load(weights_only=True) must refuse it unread."""

    def __reduce__(self) -> tuple[Callable, tuple]:
        return (print, ("pickled code ran",))


def pickled_code_as_weights(folder: Path) -> tuple[str, str]:
    return (BASE_SPEC.replace('[model]\n', "[model]\n" + _weights(folder, Payload())),
            r"model.checkpoint .*weights.pt: holds pickled objects other than tensors")


def truncated_weights(folder: Path) -> tuple[str, str]:
    spec = _weights(folder, models.create("mlp", in_features=64, hidden=(16,),
                                          num_classes=10).state_dict())
    path = folder / "weights.pt"
    path.write_bytes(path.read_bytes()[:200])
    return (BASE_SPEC.replace('[model]\n', "[model]\n" + spec),
            r"model.checkpoint .*weights.pt: not a readable file \(.*\); expected a state_dict")


def _mnist_spec(folder: Path) -> str:
    return (BASE_SPEC.replace('dataset = "digits"', f'dataset = "mnist"\nroot = "{folder}"')
            .replace("in_features = 64", "in_features = 784"))


def truncated_idx(folder: Path) -> tuple[str, str]:
    files = write_mnist_folder(folder, np.random.default_rng(0), gz=False)
    path = folder / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:100])
    assert files
    return _mnist_spec(folder), r"train-images-idx3-ubyte: truncated; the header gives shape"


def idx_with_wrong_magic(folder: Path) -> tuple[str, str]:
    write_mnist_folder(folder, np.random.default_rng(0), gz=False)
    labels = np.zeros(20, np.uint8)
    write_idx(folder / "t10k-labels-idx1-ubyte", labels, magic=0x0803)
    return _mnist_spec(folder), r"t10k-labels-idx1-ubyte: magic number 2051 .* expected 2049"


def cifar_batch_of_the_wrong_shape(folder: Path) -> tuple[str, str]:
    batches = folder / "cifar-10-batches-py"
    batches.mkdir()
    for name in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]:
        batch = {b"data": np.zeros((4, 100), np.uint8), b"labels": [0, 1, 2, 3]}
        (batches / name).write_bytes(pickle.dumps(batch))
    spec = (BASE_SPEC.replace('dataset = "digits"', f'dataset = "cifar10"\nroot = "{folder}"')
            .replace("in_features = 64", "in_features = 3072"))
    return spec, r"data_batch_1: b'data' is a uint8 array of shape \(4, 100\); expected"


def svhn_mat_without_its_keys(folder: Path) -> tuple[str, str]:
    for name in ("train_32x32.mat", "test_32x32.mat"):
        scipy.io.savemat(folder / name, {"images": np.zeros((32, 32, 3, 2), np.uint8)})
    spec = (BASE_SPEC.replace('dataset = "digits"', f'dataset = "svhn"\nroot = "{folder}"')
            .replace("in_features = 64", "in_features = 3072"))
    return spec, r"_32x32.mat: no variable 'X'"


def missing_data_folder(folder: Path) -> tuple[str, str]:
    return (_mnist_spec(folder / "nowhere"),
            r"nowhere: not a folder; expected the folder holding the idx files")


SPEC_BUILDERS = [nan_weights, weights_of_another_model, pickled_code_as_weights,
                 truncated_weights, truncated_idx,
                 idx_with_wrong_magic, cifar_batch_of_the_wrong_shape,
                 svhn_mat_without_its_keys, missing_data_folder]


@pytest.mark.parametrize("build", SPEC_BUILDERS, ids=lambda f: f.__name__)
def test_bad_model_or_data_file(build, tmp_path, capsys):
    text, pattern = build(tmp_path)
    spec = tmp_path / "spec.toml"
    spec.write_text(text)
    one_line_exit_2(run_argv(spec, tmp_path), pattern, capsys)
    assert "pickled code ran" not in capsys.readouterr().out


def foreign_hdf5(path: Path) -> str:
    with h5py.File(path, "w") as handle:
        handle["x"] = np.arange(3)
    return r"not an analogsim results file"


def _results_of_version(path: Path, version: int) -> None:
    with ResultsWriter(path, command="test"):
        pass
    with h5py.File(path, "a") as handle:
        handle.attrs["format_version"] = version


def newer_results_format(path: Path) -> str:
    _results_of_version(path, FORMAT_VERSION + 1)
    return rf"format version {FORMAT_VERSION + 1}; this analogsim reads version {FORMAT_VERSION}"


def older_results_format(path: Path) -> str:
    _results_of_version(path, FORMAT_VERSION - 1)
    return rf"format version {FORMAT_VERSION - 1}; this analogsim reads version"


def truncated_results(path: Path) -> str:
    with ResultsWriter(path, command="test") as writer:
        writer.create_run("r", axes={"x": [1, 2], "instance": range(3)})
    path.write_bytes(path.read_bytes()[:700])
    return r"not a readable HDF5 file \(truncated or corrupt\?\)"


def text_file_named_h5(path: Path) -> str:
    path.write_text("sigma,accuracy\n0.1,0.9\n")
    return r"not a readable HDF5 file"


def missing_results(path: Path) -> str:
    return r"results file .*missing.h5' does not exist"


RESULTS_BUILDERS = [foreign_hdf5, newer_results_format, older_results_format, truncated_results,
                    text_file_named_h5, missing_results]


@pytest.mark.parametrize("build", RESULTS_BUILDERS, ids=lambda f: f.__name__)
def test_bad_results_file(build, tmp_path, capsys):
    path = tmp_path / ("missing.h5" if build is missing_results else "results.h5")
    pattern = build(path)
    assert FORMAT == "analogsim-results"
    one_line_exit_2(["report", str(path), "-o", str(tmp_path / "report")], pattern, capsys)


def test_the_corpus_is_large_enough():
    cases = (len(list((CORPUS / "cards").glob("*.toml"))) + len(list(
        (CORPUS / "specs").glob("*.toml"))) + len(SPEC_BUILDERS) + len(RESULTS_BUILDERS)
             + len(MEASUREMENTS))
    assert cases >= 30, cases


def test_the_installed_command_exits_2_with_one_line(tmp_path):
    """The same through the real entry point, in a fresh process."""
    executable = shutil.which("analogsim", path=str(Path(sys.executable).parent))
    done = subprocess.run([executable, "report", str(tmp_path / "none.h5")],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "does not exist" in done.stderr


MEASUREMENTS = {
    "missing_column": ("device,target_uS\n0,12.5\n", r"programmed_uS"),
    "siemens": ("target_uS,programmed_uS\n" + "".join(
        f"{t * 1e-6:.3e},{t * 1.01e-6:.3e}\n" for t in range(1, 200)), r"siemens"),
    "negative": ("target_uS,programmed_uS\n1.0,-0.5\n", r"negative"),
    "too_few": ("target_uS,programmed_uS\n" + "".join(
        f"{t / 4:.2f},{t / 4 + 0.1:.2f}\n" for t in range(1, 20)), r"needs? .*\d+"),
    "mixed_delimiters": ("target_uS;programmed_uS,time_s\n1.0;1.1,\n",
                         r"header row .* mixes commas and semicolons"),
    "space_separated": ("target_uS programmed_uS\n1.0 1.1\n",
                        r"not separated by commas, semicolons or tabs"),
}


@pytest.mark.parametrize("case", list(MEASUREMENTS))
def test_bad_measurement_file(case, tmp_path, capsys):
    text, pattern = MEASUREMENTS[case]
    path = tmp_path / f"{case}.csv"
    path.write_text(text)
    one_line_exit_2(["fit-device", str(path), "-o", str(tmp_path / "card.toml"), "--report",
               str(tmp_path / "report")], pattern, capsys)
    assert not (tmp_path / "card.toml").exists()
