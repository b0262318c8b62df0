"""Generated user sessions for the interests tests, shaped like a new user's trial of the job:
regular users (3 views within a minute, then up to 20 more at gaps of 10 s to 10 min), users at
the newcomer threshold (2 views, then a gap longer or shorter than the newcomer TTL; or 3 views,
then such a gap), and users with an item that decays below `prune_below` and comes back. Videos
were uploaded a day earlier; a few never were (their views are unenriched). Deterministic by
seed; events sorted by event time, then each delayed by up to `jitter_ms` of arrival."""
from __future__ import annotations

import random
from dataclasses import dataclass

CATEGORIES = [f"cat_{k}" for k in range(12)]
RARE = "retro"  # the category that decays below the threshold and comes back


@dataclass
class Sessions:
    events: list  # dicts in arrival order
    uploads: list


def generate(seed: int, start_ms: int, regulars: int = 300, thresholds: int = 60, comebacks: int = 30,
             videos: int = 240, creators: int = 50, jitter_ms: int = 300) -> Sessions:
    rng = random.Random(seed)
    uploads = []
    for k in range(videos):
        uploads.append({"video_id": f"v{k}", "creator_id": f"c{rng.randrange(creators)}",
                        "category": CATEGORIES[k % len(CATEGORIES)], "video_duration_ms": rng.choice([15_000, 30_000, 60_000]),
                        "region": "US", "upload_time": start_ms - 86_400_000 + k})
    uploads.append({"video_id": "v-retro", "creator_id": "c-retro", "category": RARE, "video_duration_ms": 30_000,
                    "region": "US", "upload_time": start_ms - 86_400_000})
    duration = {u["video_id"]: u["video_duration_ms"] for u in uploads}
    views = []

    def view(user: str, t: int, video: str | None = None):
        video = video or (f"v{rng.randrange(videos)}" if rng.random() > 0.03 else "v-never-uploaded")
        d = duration.get(video, 30_000)
        watch = rng.randrange(500, d + 1)
        views.append({"event_id": f"{user}-{len(views)}", "user_id": user, "video_id": video, "event_time": t,
                      "region": rng.choice(["US", "GB", "BR"]), "watch_time_ms": watch, "video_duration_ms": d,
                      "liked": rng.random() < 0.2, "shared": rng.random() < 0.05, "commented": rng.random() < 0.05,
                      "skipped": rng.random() < 0.2, "rewatches": rng.choice([0, 0, 0, 1, 2, 7])})

    for u in range(regulars):
        t = start_ms + rng.randrange(3 * 3_600_000)
        for _ in range(3):
            t += rng.randrange(1_000, 20_000)
            view(f"r{u}", t)
        for _ in range(rng.randrange(21)):
            t += rng.randrange(10_000, 600_001)
            view(f"r{u}", t)
    for u in range(thresholds):  # around the newcomer TTL (2 min by default), on both sides
        t = start_ms + rng.randrange(3 * 3_600_000)
        for _ in range(2 + u % 2):
            t += rng.randrange(1_000, 20_000)
            view(f"n{u}", t)
        t += rng.choice([100_000, 119_000, 121_000, 180_000, 600_000])
        for _ in range(1 + rng.randrange(3)):
            view(f"n{u}", t)
            t += rng.randrange(1_000, 30_000)
    for u in range(comebacks):  # a rare item, 2.5 h of others at gaps under 10 min, the rare item again
        t = start_ms + rng.randrange(3_600_000)
        view(f"b{u}", t, "v-retro")
        end = t + 9_000_000
        while t < end:
            t += rng.randrange(60_000, 540_000)
            view(f"b{u}", t)
        view(f"b{u}", t + 1000, "v-retro")
    views.sort(key=lambda e: (e["event_time"], e["event_id"]))
    arrival = sorted(range(len(views)), key=lambda i: views[i]["event_time"] + rng.randrange(jitter_ms + 1))
    return Sessions([views[i] for i in arrival], uploads)
