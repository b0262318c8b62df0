"""Reading a running job's metrics from Flink's REST API (the mini-cluster serves it too, on
`rest.port`; the standalone cluster on its JobManager)."""
from __future__ import annotations

import json
import urllib.request


def _get(url: str, timeout: float = 2.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


def running_job_id(rest_url: str) -> str | None:
    jobs = _get(f"{rest_url}/jobs").get("jobs", [])
    running = [j["id"] for j in jobs if j["status"] == "RUNNING"]
    return running[0] if running else None


def operator_metric(rest_url: str, operator: str, metric: str) -> float | None:
    """Sum over subtasks of `metric` of the vertex whose name starts with `operator` (Flink
    prefixes operator metrics with the operator name, spaces as underscores). None until the
    job runs and the metric has been reported."""
    jid = running_job_id(rest_url)
    if jid is None:
        return None
    for v in _get(f"{rest_url}/jobs/{jid}")["vertices"]:
        if v["name"].startswith(operator):
            name = f"{operator.replace(' ', '_')}.{metric}"
            got = _get(f"{rest_url}/jobs/{jid}/vertices/{v['id']}/subtasks/metrics?get={name}&agg=sum")
            return float(got[0]["sum"]) if got else None
    return None
