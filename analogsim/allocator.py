"""The process's C heap: keep freed memory for repeated forwards, return it after big jobs.

PyTorch on CPU takes every activation from ``malloc``. glibc serves large blocks with
``mmap`` and gives freed memory back to the operating system above a small trim threshold, so
each forward pass can fault its tensors in again, page by page, and how often it does depends
on what the process allocated before. (A Dask worker is the worst case: its nanny starts it
with ``MALLOC_TRIM_THRESHOLD_=65536``.) Raising both thresholds keeps those pages mapped; peak
memory is unchanged, but the process keeps its peak until it exits.

Programming and aging a large model do the opposite: they allocate and free a layer's
temporaries (tens of MB each) between tensors that stay, and glibc keeps the freed blocks in
holes between the kept ones, which it reuses poorly: aging GPT-2 small (85 M analog weights)
on pcm peaked at 1.9 GiB resident against 0.99 GiB of live state
(``benchmarks/bench_transformer_memory.py``). :func:`release_free_memory` (``malloc_trim(0)``)
after each large layer returns every free page, so the peak stays within one layer's working
set of the state.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import sys

log = logging.getLogger(__name__)

# mallopt parameters, from glibc's malloc.h
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: bytes; glibc's ceiling for the mmap threshold on 64-bit systems (4 MiB · sizeof(long)).
MMAP_THRESHOLD = 32 * 1024**2
#: bytes of free memory at the top of the heap before glibc returns it to the system.
TRIM_THRESHOLD = 1024**3
#: A layer whose programmed state covers at least this many weights over all its instances
#: (4 MiB of float32) returns the heap's free memory after it is programmed or aged.
TRIM_WEIGHTS = 2**20


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    """glibc, or None on other systems and C libraries."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt, libc.malloc_trim  # noqa: B018  (musl has neither)
    except (OSError, AttributeError):
        return None
    return libc


def keep_freed_memory() -> bool:
    """Have glibc's malloc serve blocks up to 32 MiB from the heap and keep up to 1 GiB of
    freed memory (``mallopt``); a no-op elsewhere.

    Returns:
        Whether the setting took effect (False on other C libraries and systems).
    """
    libc = _glibc()
    if libc is None:
        return False
    applied = bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    log.debug("malloc keeps freed memory: %s", applied)
    return applied


def release_free_memory(weights: int) -> None:
    """After programming or aging a layer of ``weights`` weights × instances: return the C
    heap's free pages to the system (glibc's ``malloc_trim(0)``) when it is at least
    :data:`TRIM_WEIGHTS`; a no-op elsewhere."""
    libc = _glibc()
    if libc is not None and weights >= TRIM_WEIGHTS:
        libc.malloc_trim(0)
