"""The writer process's collector policy (services/gc_policy.py): holding a poll's worth of decoded
updates must not set off full collections, which traverse every held update."""
import subprocess
import sys

from settings.config import REPO_ROOT

HOLD_UPDATES = """
import gc, sys
from featurestore.updates import FeatureUpdate, decode_updates, encode_records
from services.gc_policy import rare_full_collections
if sys.argv[1] == "policy":
    rare_full_collections()
records = [r.encode() for r in encode_records(
    FeatureUpdate("g", f"v{i}", 1000, 1, [i, 0.5, 2, 0.25] * 6) for i in range(300_000))]
full_before = gc.get_stats()[2]["collections"]
held = []
for raw in records:
    held += decode_updates(raw)
print(gc.get_stats()[2]["collections"] - full_before)
"""


def full_collections(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", HOLD_UPDATES, mode], cwd=REPO_ROOT, check=True,
                         capture_output=True, text=True)
    return int(out.stdout.strip())


def test_holding_decoded_updates_sets_off_no_full_collection_under_the_policy():
    assert full_collections("default") > 0  # the cost the policy is for
    assert full_collections("policy") == 0
