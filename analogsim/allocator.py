"""Keep freed heap memory in the process, so that fresh tensors do not page-fault.

PyTorch on CPU takes every activation from ``malloc``. glibc serves large blocks with
``mmap`` and gives freed memory back to the operating system above a small trim threshold, so
each forward pass can fault its tensors in again, page by page, and how often it does depends
on what the process allocated before. (A Dask worker is the worst case: its nanny starts it
with ``MALLOC_TRIM_THRESHOLD_=65536``.) Raising both thresholds keeps those pages mapped; peak
memory is unchanged, but the process keeps its peak until it exits.
"""

from __future__ import annotations

import ctypes
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


def keep_freed_memory() -> bool:
    """Have glibc's malloc serve blocks up to 32 MiB from the heap and keep up to 1 GiB of
    freed memory (``mallopt``); a no-op elsewhere.

    Returns:
        Whether the setting took effect (False on other C libraries and systems).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    applied = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    log.debug("malloc keeps freed memory: %s", applied)
    return applied
