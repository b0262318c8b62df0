"""The benchmarks' peak memory of a process tree counts each process once."""
from __future__ import annotations

import subprocess
import sys
import time

from bench.feature_jobs import TreeMemory

MB = 2**20


def test_the_peak_of_a_tree_is_its_processes_resident_memory_once():
    child = subprocess.Popen([sys.executable, "-c",
                              "import sys, time; x = bytearray(300 * 2**20); print(1, flush=True); time.sleep(60)"],
                             stdout=subprocess.PIPE)
    try:
        assert child.stdout.readline().strip() == b"1"  # the 300 MB are allocated (and touched)
        mem = TreeMemory([child.pid])
        mem.start()
        deadline = time.monotonic() + 20
        while mem.peak < 300 * MB and time.monotonic() < deadline:
            time.sleep(0.1)
        mem.stop.set()
        assert 300 * MB <= mem.peak < 450 * MB
    finally:
        child.kill()
        child.wait()
