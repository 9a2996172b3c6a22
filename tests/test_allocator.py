"""keep_freed_memory: fresh tensors stop page-faulting once malloc keeps freed memory."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")

# Run in a fresh process: how a heap faults depends on everything allocated before.
PROBE = """
import ctypes, json, resource, torch
from analogsim.allocator import keep_freed_memory

def page_faults_of_fresh_tensors(count=20):
    # minor page faults while `count` 8 MiB tensors are made, written and freed in turn
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(count):
        torch.empty(2 * 1024**2).fill_(1.0)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

ctypes.CDLL("libc.so.6").mallopt(-1, 64 * 1024)  # M_TRIM_THRESHOLD, as a Dask nanny sets it
faulting = page_faults_of_fresh_tensors()
applied = keep_freed_memory()
page_faults_of_fresh_tensors()  # these map the pages the heap keeps from now on
kept = page_faults_of_fresh_tensors()
print(json.dumps({"faulting": faulting, "applied": applied, "kept": kept,
                  "pages": 8 * 1024**2 // resource.getpagesize()}))
"""


def test_freed_memory_is_kept_instead_of_faulted_in_again() -> None:
    result = json.loads(subprocess.run([sys.executable, "-c", PROBE], check=True,
                                       capture_output=True, text=True).stdout)
    assert result["applied"]
    assert result["kept"] < result["pages"]  # 20 tensors reuse one tensor's pages
    # before, every tensor faulted its pages in again (fewer faults with huge pages, still many)
    assert result["faulting"] > 10 * max(result["kept"], 1)
