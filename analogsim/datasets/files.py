"""Readers for data set files the user downloaded: MNIST-style idx, CIFAR-10 pickles, SVHN .mat.

Nothing here downloads. Each reader checks the layout it expects and raises
:class:`~analogsim.errors.DataError` naming the file, what it found and what it expected. CIFAR-10
batches are Python pickles, which can run code when loaded; they go through
:class:`_RestrictedUnpickler`, which builds only dicts, lists, bytes, str, int and numpy arrays.

Every reader returns :class:`RawSplit`: uint8 images (N, C, H, W) and int64 labels (N,), for the
official training and test splits.
"""

import gzip
import logging
import pickle
import struct
import zlib
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import numpy as np

from analogsim.errors import DataError, MissingDataFileError

try:
    from numpy._core.multiarray import _reconstruct  # numpy ≥ 2
except ImportError:  # numpy 1.x
    from numpy.core.multiarray import _reconstruct

__all__ = ["RawSplit", "read_cifar10", "read_idx", "read_mnist", "read_svhn"]

logger = logging.getLogger(__name__)

IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions (N, rows, cols)
IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension (N,)
_GZIP_MAGIC = b"\x1f\x8b"

CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_BATCH = "test_batch"
_CIFAR10_ROW = 3 * 32 * 32  # one image: 1024 red, then 1024 green, then 1024 blue bytes

_NUM_CLASSES = 10


class RawSplit(NamedTuple):
    """The official training and test splits of a data set, as read from disk.

    Shape:
        x_train: (N_train, C, H, W) uint8; y_train: (N_train,) int64 in [0, 10);
        x_test: (N_test, C, H, W) uint8; y_test: (N_test,) int64 in [0, 10).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def _check_labels(labels: np.ndarray, source: str) -> np.ndarray:
    if labels.size and (labels.min() < 0 or labels.max() >= _NUM_CLASSES):
        raise DataError(
            f"{source}: labels range over [{labels.min()}, {labels.max()}]; expected class "
            f"indices in [0, {_NUM_CLASSES - 1}]"
        )
    return labels.astype(np.int64)


def _check_counts(num_images: int, num_labels: int, images_source: str, labels_source: str) -> None:
    if num_images != num_labels:
        raise DataError(
            f"{images_source} holds {num_images} images but {labels_source} holds "
            f"{num_labels} labels; expected one label per image"
        )


# ------------------------------------------------------------------ MNIST / FashionMNIST (idx)


def read_idx(path: str | Path, *, magic: int) -> np.ndarray:
    """Read one idx file of unsigned bytes (as distributed for MNIST), gzipped or not.

    The format: a big-endian int32 magic number ``0x0000 08 D`` (type 0x08 = unsigned byte,
    D dimensions), D big-endian int32 sizes, then the bytes in C order.

    Args:
        path: the file; compressed files are recognised by their gzip header, not their name.
        magic: the expected magic number, :data:`IDX_IMAGES_MAGIC` (2051) or
            :data:`IDX_LABELS_MAGIC` (2049).

    Returns:
        a uint8 array of the shape the header gives.
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as exc:
            raise DataError(f"{path}: cannot decompress this gzip file ({exc})") from exc
    if len(raw) < 4:
        raise DataError(f"{path}: truncated, {len(raw)} bytes; expected at least a 4-byte header")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise DataError(
            f"{path}: magic number {found} (0x{found:08x}); expected {magic} (0x{magic:08x}), "
            f"an idx file of unsigned bytes with {magic & 0xFF} dimension(s)"
        )
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(
            f"{path}: truncated in its header, {len(raw)} bytes; expected {header} header bytes"
        )
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(shape))
    found_bytes = len(raw) - header
    if found_bytes != expected:
        problem = "truncated" if found_bytes < expected else "longer than its header says"
        raise DataError(
            f"{path}: {problem}; the header gives shape {shape}, i.e. {expected} data bytes, "
            f"but the file holds {found_bytes}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape).copy()


def _find_idx_file(folders: list[Path], name: str) -> Path:
    for folder in folders:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    searched = ", ".join(str(folder) for folder in folders)
    raise MissingDataFileError(f"no file {name} or {name}.gz in {searched}")


def read_mnist(root: str | Path, *, subfolder: str = "MNIST") -> RawSplit:
    """Read MNIST or FashionMNIST from the four idx files of their distribution.

    Looks for ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``
    and ``t10k-labels-idx1-ubyte`` (each optionally ``.gz``) in ``root``, then in
    ``root/<subfolder>/raw`` (torchvision's layout).

    Args:
        root: the folder holding the files.
        subfolder: torchvision's folder name, ``"MNIST"`` or ``"FashionMNIST"``.

    Returns:
        images (N, 1, H, W) uint8 and labels (N,) int64 of the training (60,000 for the real
        files) and test (10,000) splits.
    """
    root = Path(root)
    if not root.is_dir():
        error = DataError if root.exists() else MissingDataFileError
        raise error(f"{root}: not a folder; expected the folder holding the idx files")
    folders = [root, root / subfolder / "raw"]
    arrays = []
    for split in ("train", "t10k"):
        images_path = _find_idx_file(folders, f"{split}-images-idx3-ubyte")
        labels_path = _find_idx_file(folders, f"{split}-labels-idx1-ubyte")
        images = read_idx(images_path, magic=IDX_IMAGES_MAGIC)
        labels = _check_labels(read_idx(labels_path, magic=IDX_LABELS_MAGIC), str(labels_path))
        _check_counts(len(images), len(labels), str(images_path), str(labels_path))
        arrays += [images[:, None, :, :], labels]
        logger.debug("read %d images %s from %s", len(labels), images.shape[1:], images_path)
    return RawSplit(*arrays)


# ------------------------------------------------------------------ CIFAR-10 (python pickles)

# The globals a CIFAR-10 batch pickle may name: containers (Python 2 pickles say __builtin__) and
# the three callables with which numpy pickles an array (numpy 1 says numpy.core, numpy 2 says
# numpy._core). Everything else, e.g. os.system, is refused before it is looked up.
_SAFE_GLOBALS: dict[tuple[str, str], Any] = {
    **{
        (module, builtin.__name__): builtin
        for module in ("builtins", "__builtin__")
        for builtin in (dict, list, bytes, str, int)
    },
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class _RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that builds only dicts, lists, bytes, str, int and numpy arrays."""

    def __init__(self, file: BinaryIO, path: Path) -> None:
        # The batches were written by Python 2: its str is read as bytes, as the CIFAR page says.
        super().__init__(file, encoding="bytes")
        self._path = path

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _SAFE_GLOBALS[(module, name)]
        except KeyError:
            raise DataError(
                f"{self._path}: the pickle asks for {module}.{name}; a CIFAR-10 batch may hold "
                "only dicts, lists, bytes, str, int and numpy arrays, so it was refused unread"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise DataError(f"{self._path}: the pickle holds a persistent id; refused unread")


def _item(batch: dict, key: str, path: Path) -> Any:
    for candidate in (key.encode(), key):
        if candidate in batch:
            return batch[candidate]
    raise DataError(
        f"{path}: no key {key.encode()!r} in the batch dict (keys: {sorted(map(repr, batch))}); "
        "expected b'data' and b'labels'"
    )


def _read_cifar10_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with path.open("rb") as file:
        try:
            batch = _RestrictedUnpickler(file, path).load()
        except (
            pickle.UnpicklingError,
            EOFError,
            ValueError,
            TypeError,
            IndexError,
            KeyError,
            AttributeError,
            OverflowError,
        ) as exc:
            raise DataError(f"{path}: not a readable CIFAR-10 batch pickle ({exc!r})") from exc
    if not isinstance(batch, dict):
        raise DataError(f"{path}: the pickle holds a {type(batch).__name__}; expected a dict")
    data = _item(batch, "data", path)
    if not (
        isinstance(data, np.ndarray)
        and data.dtype == np.uint8
        and data.ndim == 2
        and data.shape[1] == _CIFAR10_ROW
    ):
        found = (
            f"a {data.dtype} array of shape {data.shape}"
            if isinstance(data, np.ndarray)
            else f"a {type(data).__name__}"
        )
        raise DataError(
            f"{path}: b'data' is {found}; expected a uint8 array of shape (N, {_CIFAR10_ROW}), "
            "one row of 3 × 32 × 32 bytes (channels first) per image"
        )
    labels = _item(batch, "labels", path)
    if not (isinstance(labels, list) and all(isinstance(label, int) for label in labels)):
        raise DataError(f"{path}: b'labels' is a {type(labels).__name__}; expected a list of int")
    labels = _check_labels(np.asarray(labels, dtype=np.int64), str(path))
    _check_counts(len(data), len(labels), f"{path} b'data'", f"{path} b'labels'")
    return data.reshape(-1, 3, 32, 32), labels


def read_cifar10(root: str | Path) -> RawSplit:
    """Read CIFAR-10 from its Python distribution (``cifar-10-python.tar.gz``, unpacked).

    Reads ``data_batch_1`` … ``data_batch_5`` and ``test_batch`` from ``root/cifar-10-batches-py``
    or, if that folder does not exist, from ``root`` itself. Each batch is a pickled dict with
    ``b'data'``, uint8 (N, 3072), and ``b'labels'``, a list of N ints.

    Returns:
        images (N, 3, 32, 32) uint8 and labels (N,) int64 of the training (50,000 for the real
        files) and test (10,000) splits.
    """
    root = Path(root)
    folder = root / CIFAR10_FOLDER if (root / CIFAR10_FOLDER).is_dir() else root
    missing = [
        name
        for name in (*CIFAR10_TRAIN_BATCHES, CIFAR10_TEST_BATCH)
        if not (folder / name).is_file()
    ]
    if missing:
        raise MissingDataFileError(
            f"{folder}: missing CIFAR-10 batch file(s) {', '.join(missing)}; expected "
            f"{', '.join(CIFAR10_TRAIN_BATCHES)} and {CIFAR10_TEST_BATCH} (the unpacked "
            f"cifar-10-python.tar.gz) in {root} or {root / CIFAR10_FOLDER}"
        )
    train = [_read_cifar10_batch(folder / name) for name in CIFAR10_TRAIN_BATCHES]
    x_test, y_test = _read_cifar10_batch(folder / CIFAR10_TEST_BATCH)
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    logger.debug("read CIFAR-10 from %s: %d train, %d test", folder, len(y_train), len(y_test))
    return RawSplit(x_train, y_train, x_test, y_test)


# ------------------------------------------------------------------ SVHN (MATLAB .mat)


def _read_svhn_file(path: Path) -> tuple[np.ndarray, np.ndarray]:
    from scipy.io import loadmat  # scipy.io is slow to import and needed only here

    layout = "'X' of shape (32, 32, 3, N) and 'y' of shape (N, 1) with labels 1-10"
    try:
        contents = loadmat(path, variable_names=["X", "y"])
    except (ValueError, TypeError, OSError, EOFError) as exc:
        raise DataError(f"{path}: not a readable MATLAB file ({exc}); expected {layout}") from exc
    for key in ("X", "y"):
        if key not in contents:
            found = sorted(name for name in contents if not name.startswith("__"))
            raise DataError(f"{path}: no variable {key!r} (found {found}); expected {layout}")
    images, labels = contents["X"], contents["y"]
    if images.ndim != 4 or images.shape[:3] != (32, 32, 3) or images.dtype != np.uint8:
        raise DataError(
            f"{path}: 'X' is a {images.dtype} array of shape {images.shape}; "
            f"expected uint8 {layout}"
        )
    labels = labels.reshape(-1)
    if labels.size and (labels.min() < 1 or labels.max() > _NUM_CLASSES):
        raise DataError(
            f"{path}: 'y' ranges over [{labels.min()}, {labels.max()}]; expected {layout}"
        )
    # SVHN writes the digit 0 as label 10.
    labels = np.where(labels == 10, 0, labels).astype(np.int64)
    _check_counts(images.shape[3], len(labels), f"{path} 'X'", f"{path} 'y'")
    return np.ascontiguousarray(images.transpose(3, 2, 0, 1)), labels  # (N, 3, 32, 32)


def read_svhn(root: str | Path) -> RawSplit:
    """Read SVHN (cropped digits, format 2) from ``train_32x32.mat`` and ``test_32x32.mat``.

    Each file holds ``X``, uint8 (32, 32, 3, N) in (row, column, channel, image) order, and ``y``,
    (N, 1) with labels 1-10, where 10 stands for the digit 0 (mapped here to 0). The optional
    ``extra_32x32.mat`` is not read.

    Returns:
        images (N, 3, 32, 32) uint8 and labels (N,) int64 of the training (73,257 for the real
        files) and test (26,032) splits.
    """
    root = Path(root)
    arrays = []
    for split in ("train", "test"):
        path = root / f"{split}_32x32.mat"
        if not path.is_file():
            raise MissingDataFileError(
                f"{root}: no file {path.name}; expected train_32x32.mat and test_32x32.mat"
            )
        arrays += _read_svhn_file(path)
    logger.debug("read SVHN from %s: %d train, %d test", root, len(arrays[1]), len(arrays[3]))
    return RawSplit(*arrays)
