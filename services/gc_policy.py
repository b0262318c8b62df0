"""The garbage collector's policy for a process that hosts the feature writer.

WHY: the writer allocates a few containers per feature update (the decoded object, its values
list, the update tuple) and holds a poll's batch of them, and the offline log's buffer, until they
are written. Python's full collections, which come every 10 middle collections once the long-lived
set has grown by a quarter, traverse every held update down to its values. `python -m bench.writer`
(1.4M engagement updates through the writer's steps, no Redis): 16.4 s with Python's thresholds,
of which 21 full collections took 8.3 s; 7.8 s with full collections 100 times rarer. That garbage
holds almost no reference cycles; young and middle collections run as by default and still free
young cycles.
"""
from __future__ import annotations

import gc

FULL_COLLECTION_EVERY = 1000  # middle collections between full ones (Python's default: 10)


def rare_full_collections() -> None:
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)
