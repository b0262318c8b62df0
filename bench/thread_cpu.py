"""Where a run's CPU goes while its Flink job runs: CPU seconds per group of threads, from the job's
first source task to the end of the run (the writer's drain included). The job's JVM by thread
(the JIT compilers, the collector, each operator chain by the first 15 characters of its name, as
the kernel keeps them), its Python processes (the driver with the feature writer, the workers),
and whole processes beside it (the broker, Redis). On 2 cores, the job's own chains get what the
rest leaves."""
from __future__ import annotations

import re
import threading
import time

from stack import procs



def job_started(kind: str, name: str) -> bool:
    """A Flink source task's thread: the job's tasks are deployed."""
    return kind == "jvm" and name.startswith("Source: ")


def thread_group(kind: str, name: str) -> str:
    """The group a thread's CPU is counted in: `kind` is its process's (procs.kind, or a name given
    for a whole process)."""
    if kind != "jvm":
        return kind
    if "CompilerThre" in name:
        return "jvm.jit"
    if name.startswith(("GC Thread", "VM Thread")):
        return "jvm.gc"
    return "jvm." + re.sub(r"\d+", "N", name)


class ThreadCpu(threading.Thread):
    """Samples every `interval_s` the threads of the process tree of `pid` and of the processes
    `beside` ({name: pid}); `result()` after `stop` is set and the thread joined: {group: CPU
    seconds since the first thread for which `started(kind, name)` held, largest first, "seconds":
    the wall time it covers} (empty if none did). A thread that ends between samples loses at most
    an interval of its CPU."""

    def __init__(self, pid: int, beside: dict, interval_s: float = 0.25, started=job_started):
        super().__init__(daemon=True)
        self.pid, self.beside, self.interval_s, self.started = pid, dict(beside), interval_s, started
        self.stop = threading.Event()
        self.last: dict = {}  # (pid, tid) -> (group, CPU seconds)
        self.at_start: dict | None = None
        self.started_at = self.ended_at = 0.0

    def sample(self) -> None:
        processes = [(p, procs.kind(p)) for p in procs.tree(self.pid)] + [(p, n) for n, p in self.beside.items()]
        for pid, kind in processes:
            for tid, (name, seconds) in procs.thread_cpu_seconds(pid).items():
                self.last[(pid, tid)] = (thread_group(kind, name), seconds)
                if self.at_start is None and self.started(kind, name):
                    self.at_start, self.started_at = dict(self.last), time.monotonic()

    def run(self) -> None:
        while not self.stop.is_set():
            self.sample()
            self.stop.wait(self.interval_s)
        self.ended_at = time.monotonic()

    def result(self) -> dict:
        if self.at_start is None:
            return {}
        used: dict = {}
        for key, (group, seconds) in self.last.items():
            before = self.at_start.get(key, (group, 0.0))[1]
            used[group] = used.get(group, 0.0) + seconds - before
        out = {g: round(s, 1) for g, s in sorted(used.items(), key=lambda kv: -kv[1]) if s >= 0.05}
        out["seconds"] = round(self.ended_at - self.started_at, 1)
        return out
