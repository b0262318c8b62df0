"""The benchmarks' CPU use of a process tree counts its children's CPU, each process once."""
from __future__ import annotations

import subprocess
import sys
import time

from bench.engagement import cores_between, cpu_used

SPIN = ("import time\nt = time.process_time()\nwhile time.process_time() - t < {s}: pass\n"
        "print(1, flush=True)\ntime.sleep(60)")


def test_a_trees_cpu_counts_the_cpu_its_child_used():
    parent = subprocess.Popen([sys.executable, "-c",
                               "import subprocess, sys; "
                               f"subprocess.run([sys.executable, '-c', {SPIN.format(s=0.6)!r}])"],
                              stdout=subprocess.PIPE)
    try:
        start = cpu_used({"tree": parent.pid})
        assert parent.stdout.readline().strip() == b"1"  # the child spun for 0.6 s of CPU, then sleeps
        end = cpu_used({"tree": parent.pid})
        used = end[1]["tree.total"] - start[1]["tree.total"]
        # the child's 0.6 s and two interpreters' start-up, counted once (twice would be 1.2 s or more)
        assert 0.55 <= used < 1.0
        assert end[1]["tree.python_driver"] == end[1]["tree.total"]
        assert end[1]["bench.sender"] - start[1]["bench.sender"] < 0.3  # this process only waited
        cores = cores_between(start, end)["tree.total"]
        assert 0.2 <= cores <= 1.05  # one process spinning: at most one core
    finally:
        for p in subprocess.run(["pgrep", "-P", str(parent.pid)], capture_output=True, text=True).stdout.split():
            subprocess.run(["kill", p])
        parent.kill()
        parent.wait()
