"""The exceptions analogsim raises.

Every error a user can cause (a bad card, spec, model, data file, results file or argument) is
an :class:`AnalogsimError`, and also the builtin exception Python code expects for it: a
:class:`CardError` is a :class:`ValueError`, a missing spec file a :class:`FileNotFoundError`, a
missing optional extra an :class:`ImportError`. So ``except AnalogsimError`` catches every
error of analogsim, and ``except ValueError`` keeps working where a builtin is expected. The CLI
turns these into one line on stderr and exit code 2; anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

from pathlib import Path


class AnalogsimError(Exception):
    """Base class of every error caused by input analogsim was given."""

    # The message as given: KeyError would quote it, OSError would format it as errno/strerror.
    __str__ = BaseException.__str__


class UsageError(AnalogsimError, ValueError):
    """An argument of a function or class has a value outside the ones it takes."""


class ArgumentTypeError(AnalogsimError, TypeError):
    """An argument of a function or class is of a type it does not take."""


class MissingFileError(AnalogsimError, FileNotFoundError):
    """A file or folder the user named does not exist."""


class MissingExtraError(AnalogsimError, ImportError):
    """An optional dependency (an extra of the package: aihwkit, Dask, mlxtend) is not
    installed; the message says which ``make`` target installs it."""


class CardError(AnalogsimError, ValueError):
    """A device card (TOML) or an override of one is malformed or out of range."""


class UnknownChipError(CardError, KeyError):
    """A card name that is neither a shipped card nor a path to a .toml file."""


class ConversionError(AnalogsimError, ValueError):
    """A model cannot be converted to (or from) analog layers as asked."""


class StateError(AnalogsimError, RuntimeError):
    """An operation needs a state the model is not in (e.g. drift before program)."""


class ShapeError(AnalogsimError, ValueError):
    """A tensor has a shape other than the one an operation needs."""


class ResourceError(MemoryError, AnalogsimError):
    """A run would need more memory than the machine has available or the user allows
    (``max_memory``, ``--max-memory``); refused before any work. MemoryError comes first in
    the bases: its ``__new__`` refuses to build a class whose first base is another's."""


# A missing file is an OSError first: its C layout is OSError's, so OSError must come before
# ValueError in the order of bases, or ``cls.__new__`` (which tblib's exception pickling, and
# so Dask, calls) resolves to ValueError's and refuses to build it.


class DataError(AnalogsimError, ValueError):
    """A data set file is missing, truncated or not in the expected format."""


class MissingDataFileError(MissingFileError, DataError):
    """A data, model, measurement or read-back file (or folder) that does not exist."""


class ResultsFileError(AnalogsimError, ValueError):
    """An HDF5 file is not an analogsim results file, or is of an unsupported format version."""


class MissingResultsFileError(MissingFileError, ResultsFileError):
    """A results file that does not exist."""


class SpecError(AnalogsimError, ValueError):
    """An experiment spec (TOML) is malformed or names something unknown."""


class MissingSpecFileError(MissingFileError, SpecError):
    """A spec file that does not exist."""


class DigitalRemainderWarning(UserWarning):
    """``convert`` left modules that multiply by a weight matrix digital; the message names
    each with its reason, and ``layers`` holds their qualified names. A warning, not an
    error: the model works, but part of it does not run on the simulated chip."""

    def __init__(self, message: str, layers: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.layers = layers


def require_file(path: Path, what: str, invalid: type[AnalogsimError],
                 missing: type[MissingFileError]) -> None:
    """Refuse a ``path`` the user named that is not an existing regular file.

    Args:
        path: the file.
        what: how the message names it, e.g. ``"spec file"``.
        invalid: the error for something other than a file there (a folder).
        missing: the error for nothing there.

    Raises:
        invalid: ``path`` is a folder or another non-regular file.
        missing: ``path`` does not exist.
    """
    if path.is_file():
        return
    if path.exists():
        kind = "a folder" if path.is_dir() else "not a regular file"
        raise invalid(f"{what} {str(path)!r} is {kind}; expected a file")
    raise missing(f"{what} {str(path)!r} does not exist")
