"""Process trees from /proc: descendants, resident memory, and stopping them (no extra dependency)."""
from __future__ import annotations

from pathlib import Path


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        todo += _children(p)
    return pids


def rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used so far (0 once it is gone)."""
    import os

    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu_seconds(pid: int) -> dict:
    """CPU seconds each live thread of process `pid` has used so far, by thread id: (its name as
    the kernel keeps it, at most 15 characters; seconds)."""
    import os

    out = {}
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue
        name, fields = stat[stat.index("(") + 1:stat.rindex(")")], stat.rsplit(")", 1)[1].split()
        out[int(task.name)] = (name, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"))
    return out


def tree_cpu_seconds(pid: int) -> dict:
    """CPU seconds used so far by the live processes of the tree of `pid`, per kind of process and
    in total (a process that has ended no longer counts)."""
    return _per_kind(pid, cpu_seconds)


def _per_kind(pid: int, measure) -> dict:
    """`measure` of each process of the tree of `pid`, summed per kind of process and in total."""
    by_kind: dict = {}
    for p in tree(pid):
        k = kind(p)
        by_kind[k] = by_kind.get(k, 0) + measure(p)
    by_kind["total"] = sum(by_kind.values())
    return by_kind


def kind(pid: int) -> str:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "gone"
    if "java" in cmd.split(" ")[0]:
        return "jvm"
    if "pyflink.fn_execution" in cmd or "beam" in cmd:
        return "python_worker"
    return "python_driver" if "python" in cmd else "other"


def tree_rss(pid: int) -> dict:
    return _per_kind(pid, rss_bytes)


def terminate_descendants(pid: int, grace_s: float = 10.0) -> None:
    """SIGTERM every descendant of `pid`, then SIGKILL what is left after `grace_s`."""
    import os
    import signal
    import time

    victims = [p for p in tree(pid) if p != pid]
    for p in victims:
        try:
            os.kill(p, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() and rss_bytes(p) for p in victims):
        time.sleep(0.1)
    for p in victims:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def stop_group_leader(proc, timeout: float = 60.0) -> None:
    """SIGTERM a process started in its own session (it shuts its children down itself), then
    SIGKILL its process group if anything is left."""
    import os
    import signal
    import subprocess

    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait(timeout=30)
