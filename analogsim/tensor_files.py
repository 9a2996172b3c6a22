"""Reading tensor files users hand in: ``torch.load`` with ``weights_only=True``, one error line.

A file from a user is data: pickled code in it is refused unread, and anything unreadable
becomes the caller's :class:`~analogsim.errors.AnalogsimError` naming the file.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from analogsim.errors import AnalogsimError


def load_tensor_file(path: str | Path, what: str, expected: str,
                     error: type[AnalogsimError]) -> Any:
    """The content of a ``torch.save`` file, on the CPU.

    Args:
        path: the file.
        what: how the error names it, e.g. ``"model.checkpoint model.pt"``.
        expected: what the file should be, for the error, e.g. ``"a state_dict saved with
            torch.save"``.
        error: the error class to raise.

    Raises:
        error: the file holds pickled objects other than tensors and containers, or is not a
            readable ``torch.save`` file.
    """
    try:
        return torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError:
        raise error(f"{what}: holds pickled objects other than tensors (refused unread: "
                    f"files load with weights_only=True); expected {expected}") from None
    except (RuntimeError, EOFError, ValueError, OSError) as reason:
        raise error(f"{what}: not a readable file ({str(reason).splitlines()[0]}); expected "
                    f"{expected}") from None
