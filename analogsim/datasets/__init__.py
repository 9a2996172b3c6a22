"""Data sets: the inputs a model (digital or on a simulated chip) is trained and evaluated on.

Data flow: :func:`load` reads a data set by name into a :class:`DataSplit` of in-memory tensors;
training draws batches with :func:`batches` and augments them with :func:`random_crop` and
:func:`random_flip`; evaluation feeds ``x_test`` to the model. Nothing here downloads.

- :mod:`.catalog` — the known data sets, :func:`load`, :class:`DataSplit`.
- :mod:`.files` — readers for idx (MNIST, FashionMNIST), CIFAR-10 pickles (restricted
  unpickler) and SVHN .mat files.
- :mod:`.text` — ``stdlib_text``: the Python standard library's source files as character
  tokens for a language model (:attr:`DataSplit.task` ``"language_model"``).
- :mod:`.transforms` — normalisation, augmentations and batching on batch tensors.

Example, one epoch of the CIFAR-10 recipe of METHODS.md §2 (crop with padding 4, then flip)::

    split = load("cifar10", root="~/data")
    generator = torch.Generator().manual_seed(0)
    for x, y in batches(split.x_train, split.y_train, 128, shuffle=True, generator=generator):
        x = random_crop(x, generator=generator, padding=4, fill=split.black)
        x = random_flip(x, generator=generator)
        ...
"""

from analogsim.datasets.catalog import DataSplit, list_datasets, load
from analogsim.datasets.transforms import Normalization, batches, random_crop, random_flip

__all__ = [
    "DataSplit",
    "Normalization",
    "batches",
    "list_datasets",
    "load",
    "random_crop",
    "random_flip",
]
