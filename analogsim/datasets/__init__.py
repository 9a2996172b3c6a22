"""Data sets: the inputs a model (digital or on a simulated chip) is trained and evaluated on.

Data flow: :func:`load` reads a data set by name into a :class:`DataSplit` of in-memory tensors;
training draws batches with :func:`batches` and augments them with :func:`random_crop` and
:func:`random_flip`; evaluation feeds ``x_test`` to the model. Nothing here downloads.

- :mod:`.catalog` — the known data sets, :func:`load`, :class:`DataSplit`.
- :mod:`.files` — readers for idx (MNIST, FashionMNIST), CIFAR-10 pickles (restricted
  unpickler) and SVHN .mat files.
- :mod:`.transforms` — normalisation, augmentations and batching on batch tensors.
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
