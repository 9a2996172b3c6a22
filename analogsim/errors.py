"""The exceptions analogsim raises.

Every error a user can cause (a bad card, spec, model, data file or results file) is an
:class:`AnalogsimError`. The CLI turns these into one line on stderr and exit code 2; anything
else is a bug and keeps its traceback.
"""


class AnalogsimError(Exception):
    """Base class of every error caused by input analogsim was given."""


class CardError(AnalogsimError):
    """A device card (TOML) or an override of one is malformed or out of range."""


class UnknownChipError(CardError):
    """A card name that is neither a shipped card nor a path to a .toml file."""


class ConversionError(AnalogsimError):
    """A model cannot be converted to (or from) analog layers as asked."""


class StateError(AnalogsimError):
    """An operation needs a state the model is not in (e.g. drift before program)."""


class ShapeError(AnalogsimError):
    """A tensor has a shape other than the one an operation needs."""


class DataError(AnalogsimError):
    """A data set file is missing, truncated or not in the expected format."""


class ResultsFileError(AnalogsimError):
    """An HDF5 file is not an analogsim results file, or is of an unsupported format version."""


class SpecError(AnalogsimError):
    """An experiment spec (TOML) is malformed or names something unknown."""
