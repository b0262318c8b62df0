"""The synthetic world: categories with their behaviour, regions, creators and videos."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# (name, weight, skip rate, like rate, share rate, comment rate, median duration s)
CATEGORIES = (
    ("comedy", 0.22, 0.30, 0.12, 0.030, 0.020, 25),
    ("music", 0.18, 0.25, 0.10, 0.020, 0.010, 35),
    ("dance", 0.12, 0.35, 0.09, 0.015, 0.008, 20),
    ("food", 0.10, 0.40, 0.07, 0.020, 0.015, 45),
    ("sports", 0.10, 0.38, 0.08, 0.025, 0.020, 30),
    ("education", 0.08, 0.50, 0.06, 0.030, 0.025, 60),
    ("gaming", 0.10, 0.42, 0.07, 0.012, 0.030, 40),
    ("pets", 0.10, 0.28, 0.14, 0.035, 0.012, 18),
)
REGIONS = ("US", "BR", "IN", "ID", "MX", "JP", "DE", "GB", "FR", "NG")
REGION_WEIGHTS = np.array([0.22, 0.12, 0.16, 0.10, 0.07, 0.07, 0.07, 0.07, 0.06, 0.06])


@dataclass
class Catalog:
    video_ids: list
    creator_of: np.ndarray  # video index -> creator index
    category_of: np.ndarray  # video index -> category index
    duration_ms: np.ndarray
    region_of: np.ndarray  # video index -> home region index
    upload_time: np.ndarray  # ms
    popularity: np.ndarray  # unnormalised weight


def build_catalog(rng: np.random.Generator, n_videos: int, n_creators: int, start_ms: int, end_ms: int,
                  new_share: float, zipf_s: float) -> Catalog:
    """`new_share` of the videos are uploaded during [start, end); the rest before it."""
    cat_w = np.array([c[1] for c in CATEGORIES])
    category = rng.choice(len(CATEGORIES), size=n_videos, p=cat_w / cat_w.sum())
    median = np.array([c[6] for c in CATEGORIES])[category]
    duration = np.clip(rng.lognormal(np.log(median * 1000), 0.5), 3000, 600_000).astype(np.int64)
    creator_rank = rng.zipf(1.3, size=n_videos)
    creator = (creator_rank - 1) % n_creators
    region = rng.choice(len(REGIONS), size=n_videos, p=REGION_WEIGHTS)
    is_new = rng.random(n_videos) < new_share
    upload = np.where(is_new, rng.integers(start_ms, max(end_ms, start_ms + 1), size=n_videos),
                      start_ms - rng.integers(3_600_000, 30 * 86_400_000, size=n_videos))
    ranks = rng.permutation(n_videos) + 1
    popularity = 1.0 / ranks.astype(float) ** zipf_s
    ids = [f"v{i:07d}" for i in range(n_videos)]
    return Catalog(ids, creator, category, duration, region, upload.astype(np.int64), popularity)
