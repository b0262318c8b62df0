"""The spike book's worker yields the cores to the per-second path (flink.spike_worker_nice)."""
import json
import subprocess
import sys

from jobs.spikes import book_worker_nice
from settings.config import REPO_ROOT, load_config

CHILD = """
import json, os, threading
from jobs.spikes_fn import lower_priority
started, done = threading.Event(), threading.Event()
def before():  # a thread that exists when the priority is lowered
    started.set(); done.wait()
t = threading.Thread(target=before, daemon=True); t.start(); started.wait()
try:
    lower_priority(7)
    later = []
    t2 = threading.Thread(target=lambda: later.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id())))
    t2.start(); t2.join()
    nices = []
    for tid in os.listdir("/proc/self/task"):
        try:
            nices.append(os.getpriority(os.PRIO_PROCESS, int(tid)))
        except ProcessLookupError:  # a library's thread that ended after the listing
            pass
finally:
    done.set()  # on any error too: a thread left waiting would hold the child open for good
t.join()
print(json.dumps({"threads": nices, "started_later": later[0]}))
"""


def test_lower_priority_reaches_every_thread_and_later_ones():
    out = subprocess.run([sys.executable, "-c", CHILD], cwd=REPO_ROOT, capture_output=True, text=True, check=True,
                         timeout=120)
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(seen["threads"]) >= 2 and set(seen["threads"]) == {7}
    assert seen["started_later"] == 7


def test_book_keeps_its_priority_in_loopback_mode():
    cfg = load_config(REPO_ROOT / "configs" / "local.yaml")
    assert book_worker_nice(cfg) == cfg.flink.spike_worker_nice > 0
    loopback = cfg.model_copy(update={"flink": cfg.flink.model_copy(update={"python_worker_mode": "loopback"})})
    assert book_worker_nice(loopback) == 0
