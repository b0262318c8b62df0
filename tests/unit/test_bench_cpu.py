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


NAMED_SPIN = """
import ctypes, threading, time
def spin(name, seconds):
    ctypes.CDLL(None).prctl(15, name.encode(), 0, 0, 0)  # PR_SET_NAME: the thread's name in /proc
    t = time.thread_time()
    while time.thread_time() - t < seconds: pass
warm = threading.Thread(target=spin, args=("warm-up", 0.4)); warm.start(); warm.join()
time.sleep(0.6)
work = threading.Thread(target=spin, args=("Source: work", 0.8)); work.start(); work.join()
time.sleep(0.6)
"""


def test_cpu_is_counted_per_thread_group_from_the_start_of_the_job():
    """bench/thread_cpu.py: a process spins a thread for 0.4 s, then its 'job' thread for 0.8 s;
    only what ran after the job's thread appeared counts, in that thread's group."""
    from bench.thread_cpu import ThreadCpu, thread_group

    proc = subprocess.Popen([sys.executable, "-c", NAMED_SPIN])
    sampler = ThreadCpu(proc.pid, {}, interval_s=0.05, started=lambda kind, name: name.startswith("Source: "))
    sampler.start()
    proc.wait()
    sampler.stop.set()
    sampler.join()
    used = sampler.result()
    assert 0.6 <= used["python_driver"] <= 1.0, used  # the work thread's 0.8 s, not the warm-up's
    assert 1.0 <= used["seconds"] < 5, used
    assert thread_group("jvm", "C2 CompilerThre") == "jvm.jit" == thread_group("jvm", "C1 CompilerThre")
    assert thread_group("jvm", "GC Thread#1") == "jvm.gc"
    assert thread_group("jvm", "GlobalWindowAgg") == "jvm.GlobalWindowAgg"
    assert thread_group("jvm", "Thread-12") == "jvm.Thread-N"
    assert thread_group("broker", "tokio-rt-worker") == "broker"
