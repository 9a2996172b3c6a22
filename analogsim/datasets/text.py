"""``stdlib_text``: real text every machine has offline, the Python standard library's own
source files, as sequences of character tokens for a causal language model.

The corpus is read at run time from the running interpreter's installation
(``sysconfig.get_paths()["stdlib"]``); nothing is downloaded. What it holds, in order:

- **Files**: every ``*.py`` below the stdlib folder, sorted by their path relative to it (as a
  POSIX string), leaving out folders named ``site-packages``, ``dist-packages``, ``test``,
  ``tests``, ``idle_test`` and ``__pycache__`` (installed packages and the test suites, which
  some distributions do not ship). CPython 3.11 gives about 600 files, 11 MB.
- **Split by file**: a file is a test file when CRC-32 of its relative path is divisible by
  :data:`TEST_EVERY` (about one file in ten); the rule depends on the path alone, so a file
  keeps its split when others are added or removed. Each split's files are concatenated, in
  path order, into one token stream.
- **Vocabulary** (:data:`VOCABULARY`, fixed): token 0 stands for any byte outside it
  (non-ASCII bytes of UTF-8, carriage returns, form feeds); tokens 1 and 2 are tab and
  newline; tokens 3 … 97 are the printable ASCII characters ' ' … '~'. One byte is one token.
- **Sequences**: a sample is a window of ``sequence_length + 1`` consecutive tokens; the input
  is its first ``sequence_length`` tokens, the labels the last ``sequence_length`` (the next
  token at every position). Training windows start at offsets drawn uniformly from the
  training stream by ``numpy.random.default_rng(SeedSequence(seed))``: the same seed gives the
  same windows. Test windows start at evenly spaced offsets covering the test stream, the same
  for every seed.

The corpus differs between Python versions (and distributions), so :class:`TextCorpus`
records the interpreter version, the file counts and a digest of the file list and sizes, and
:attr:`DataSplit.source <analogsim.datasets.DataSplit>` carries them into results.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import platform
import sysconfig
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from analogsim.errors import DataError

__all__ = [
    "EXCLUDED_FOLDERS",
    "TEST_EVERY",
    "UNKNOWN",
    "VOCABULARY",
    "TextCorpus",
    "decode",
    "encode",
    "read_corpus",
    "source_files",
    "stdlib_root",
    "token_windows",
]

logger = logging.getLogger(__name__)

#: The characters of tokens 1, 2, …; token 0 (:data:`UNKNOWN`) is every other byte.
VOCABULARY = "\t\n" + "".join(chr(code) for code in range(32, 127))
UNKNOWN = 0
#: Folders left out of the corpus wherever they sit below the stdlib folder.
EXCLUDED_FOLDERS = frozenset({"site-packages", "dist-packages", "test", "tests", "idle_test",
                              "__pycache__"})
#: A file is a test file when crc32(relative path) % TEST_EVERY == 0 (about 10 %).
TEST_EVERY = 10

_BYTE_TO_TOKEN = np.full(256, UNKNOWN, dtype=np.uint8)
for _token, _character in enumerate(VOCABULARY, start=1):
    _BYTE_TO_TOKEN[ord(_character)] = _token


def stdlib_root() -> Path:
    """The folder of the running interpreter's standard library."""
    return Path(sysconfig.get_paths()["stdlib"])


def source_files(root: Path) -> list[str]:
    """The corpus's files: relative POSIX paths of the ``*.py`` below ``root``, sorted, outside
    :data:`EXCLUDED_FOLDERS`."""
    files = []
    for path in root.rglob("*.py"):
        relative = path.relative_to(root)
        if path.is_file() and not EXCLUDED_FOLDERS.intersection(relative.parts[:-1]):
            files.append(relative.as_posix())
    return sorted(files)


def is_test_file(relative: str) -> bool:
    """Whether the file at ``relative`` (a POSIX path under the stdlib) is in the test split."""
    return zlib.crc32(relative.encode("utf-8")) % TEST_EVERY == 0


def encode(data: bytes | str) -> np.ndarray:
    """Bytes (or text, as UTF-8) → uint8 tokens, one per byte (see :data:`VOCABULARY`)."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return _BYTE_TO_TOKEN[np.frombuffer(raw, dtype=np.uint8)]


def decode(tokens: np.ndarray | torch.Tensor) -> str:
    """Tokens → text; token 0 becomes '\N{REPLACEMENT CHARACTER}'."""
    table = "\N{REPLACEMENT CHARACTER}" + VOCABULARY
    return "".join(table[int(t)] for t in np.asarray(tokens).reshape(-1))


@dataclass(frozen=True, eq=False)
class TextCorpus:
    """The stdlib token streams of both splits and where they came from.

    Attributes:
        root: the stdlib folder read.
        python: the interpreter's version, e.g. "3.11.7".
        train_files, test_files: relative paths in each split, sorted.
        train, test: (tokens,) uint8 streams, each split's files concatenated in order.
        digest: SHA-256 (first 16 hex digits) of every file's path and size, in order.
    """

    root: Path
    python: str
    train_files: tuple[str, ...] = field(repr=False)
    test_files: tuple[str, ...] = field(repr=False)
    train: np.ndarray = field(repr=False)
    test: np.ndarray = field(repr=False)
    digest: str

    def describe(self) -> str:
        """One line for logs and results files."""
        return (f"Python {self.python} standard library at {self.root}: "
                f"{len(self.train_files)} training files ({self.train.size:,} characters), "
                f"{len(self.test_files)} test files ({self.test.size:,}); digest {self.digest}")


def read_corpus(root: Path | None = None) -> TextCorpus:
    """Read and tokenise the corpus below ``root`` (default: :func:`stdlib_root`).

    The last corpus read is kept (its streams read-only), so an experiment that loads the data
    twice (memory check, then the run) reads the files once.

    Raises:
        DataError: the folder holds no source files, or a split would be empty.
    """
    return _read_corpus(stdlib_root() if root is None else Path(root))


@functools.lru_cache(maxsize=1)
def _read_corpus(root: Path) -> TextCorpus:
    files = source_files(root) if root.is_dir() else []
    if not files:
        raise DataError(f"stdlib_text: no *.py files below {str(root)!r}; expected the Python "
                        "standard library folder (sysconfig.get_paths()['stdlib'])")
    streams: dict[bool, list[np.ndarray]] = {False: [], True: []}
    digest = hashlib.sha256()
    for relative in files:
        data = (root / relative).read_bytes()
        digest.update(f"{relative}\0{len(data)}\n".encode())
        streams[is_test_file(relative)].append(encode(data))
    test_files = tuple(f for f in files if is_test_file(f))
    train_files = tuple(f for f in files if not is_test_file(f))
    if not test_files or not train_files:
        raise DataError(f"stdlib_text: {len(files)} files below {str(root)!r} give "
                        f"{len(train_files)} training and {len(test_files)} test files; "
                        "expected both splits non-empty")
    train, test = np.concatenate(streams[False]), np.concatenate(streams[True])
    for stream in (train, test):
        stream.setflags(write=False)
    return TextCorpus(root, platform.python_version(), train_files, test_files, train, test,
                      digest.hexdigest()[:16])


def token_windows(stream: np.ndarray, starts: np.ndarray,
                  length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and next-token labels of the windows of ``length + 1`` tokens at ``starts``.

    Shape:
        stream: (tokens,); starts: (N,); returns two (N, length) int64 tensors.
    """
    index = starts.reshape(-1, 1) + np.arange(length + 1)  # (N, length + 1)
    windows = torch.from_numpy(stream[index].astype(np.int64))
    return windows[:, :-1].contiguous(), windows[:, 1:].contiguous()


def sample_windows(corpus: TextCorpus, seed: int, sequence_length: int, train_sequences: int,
                   test_sequences: int) -> tuple[torch.Tensor, ...]:
    """(x_train, y_train, x_test, y_test): random training windows from ``seed``, evenly
    spaced test windows (module docstring)."""
    for name, value in (("sequence_length", sequence_length),
                        ("train_sequences", train_sequences),
                        ("test_sequences", test_sequences)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise DataError(f"load('stdlib_text'): {name}={value!r}; expected a positive "
                            "integer")
    room = min(corpus.train.size, corpus.test.size) - sequence_length
    if room < 1:
        raise DataError(f"load('stdlib_text'): sequence_length={sequence_length} is longer than "
                        f"a split ({min(corpus.train.size, corpus.test.size)} tokens)")
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    train_starts = rng.integers(0, corpus.train.size - sequence_length, train_sequences)
    test_room = corpus.test.size - sequence_length
    test_starts = (np.arange(test_sequences) * test_room) // test_sequences
    return (*token_windows(corpus.train, train_starts, sequence_length),
            *token_windows(corpus.test, test_starts, sequence_length))
