"""The random streams of a tile: one generator per chip instance and purpose.

Instance k of seed s draws its programming, drift, read-out and per-read noise from streams
derived from (s, purpose, layer, k, ...) (:func:`analogsim.seeding.derive_seed`), so it is the
same whether programmed alone or among others.
"""

from __future__ import annotations

import torch

from analogsim.seeding import Purpose, derive_seed


class GeneratorPool:
    """Generators of one tile, kept per purpose and reseeded at every use.

    Making a generator costs as much as seeding it, and a sweep seeds thousands, so the
    objects are reused.
    """

    def __init__(self) -> None:
        self.pools: dict[Purpose, list[torch.Generator]] = {}

    def seeded(self, seed: int, purpose: Purpose, layer_index: int, instance_ids: list[int],
               *key: int) -> list[torch.Generator]:
        """One generator per instance k, seeded for the stream (seed, purpose, layer, k, *key).

        Returns the pool's list for ``purpose``; it stays valid until the next call for it.
        """
        pool = self.pools.setdefault(purpose, [])
        del pool[len(instance_ids):]
        pool.extend(torch.Generator() for _ in range(len(instance_ids) - len(pool)))
        for generator, k in zip(pool, instance_ids, strict=True):
            generator.manual_seed(derive_seed(seed, purpose, layer_index, k, *key))
        return pool

    def __getitem__(self, purpose: Purpose) -> list[torch.Generator]:
        """The generators last seeded for ``purpose``."""
        return self.pools[purpose]
