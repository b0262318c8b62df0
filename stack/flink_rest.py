"""Flink's REST API: a running job's metrics (the mini-cluster serves it too, on `rest.port`), and
the jobs of a standalone cluster: list, cancel, stop with a savepoint (fyp/cluster_cli.py)."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

# Job states in which a job still holds (or will hold) slots and reads its sources.
ACTIVE_STATES = ("INITIALIZING", "CREATED", "RUNNING", "FAILING", "CANCELLING", "RESTARTING", "RECONCILING",
                 "SUSPENDED")


class RestError(RuntimeError):
    pass


def _get(url: str, timeout: float = 2.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


def _request(method: str, url: str, body: dict | None = None, timeout: float = 10.0):
    """One REST call; Flink's error list (or the connection error) as a RestError."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
    except urllib.error.HTTPError as e:
        try:
            errors = json.loads(e.read()).get("errors", [])
        except ValueError:
            errors = []
        first = str(errors[0]).strip().splitlines()[0] if errors else e.reason
        raise RestError(f"{method} {url}: HTTP {e.code}: {first}") from None
    except (urllib.error.URLError, OSError) as e:
        raise RestError(f"{method} {url}: {getattr(e, 'reason', e)}") from None
    return json.loads(raw) if raw.strip() else {}


def overview(rest_url: str, timeout: float = 2.0) -> dict:
    """The cluster overview: taskmanagers, slots-total, slots-available, jobs-running, flink-version."""
    return _request("GET", f"{rest_url}/overview", timeout=timeout)


def jobs(rest_url: str) -> list[dict]:
    """Every job the JobManager knows, newest first: jid, name, state, start-time (ms), duration."""
    got = _request("GET", f"{rest_url}/jobs/overview").get("jobs", [])
    return sorted(got, key=lambda j: j.get("start-time", 0), reverse=True)


def resolve_job(rest_url: str, id_or_name: str) -> dict:
    """The job with this id, or the one active job with this name."""
    known = jobs(rest_url)
    for j in known:
        if j["jid"] == id_or_name:
            return j
    named = [j for j in known if j["name"] == id_or_name and j["state"] in ACTIVE_STATES]
    if len(named) == 1:
        return named[0]
    if not named:
        listed = ", ".join(f"{j['name']} {j['jid']} {j['state']}" for j in known) or "none"
        raise RestError(f"no job with id {id_or_name!r} and no active job named {id_or_name!r} (jobs: {listed})")
    raise RestError(f"{len(named)} active jobs are named {id_or_name!r}: give the id "
                    f"({', '.join(j['jid'] for j in named)})")


def job_state(rest_url: str, job_id: str) -> str:
    return _request("GET", f"{rest_url}/jobs/{job_id}").get("state", "UNKNOWN")


def root_exception(rest_url: str, job_id: str) -> str:
    """The first line of the job's root exception, as '\n<line>', or '' (for error messages)."""
    try:
        got = _request("GET", f"{rest_url}/jobs/{job_id}/exceptions")
    except RestError:
        return ""
    text = got.get("root-exception") or ""
    return "\n" + text.strip().splitlines()[0] if text.strip() else ""


def restored_from(rest_url: str, job_id: str) -> str | None:
    """Where the job's state was restored from (a savepoint's or checkpoint's location), or None
    while it has restored nothing (a fresh job, or before its tasks start)."""
    got = _request("GET", f"{rest_url}/jobs/{job_id}/checkpoints")
    restored = (got.get("latest") or {}).get("restored") or {}
    return restored.get("external_path")


def latest_completed_checkpoint(rest_url: str, job_id: str) -> dict | None:
    """The job's newest completed checkpoint (id, trigger_timestamp and latest_ack_timestamp in
    epoch ms, external_path), or None before the first one."""
    got = _request("GET", f"{rest_url}/jobs/{job_id}/checkpoints")
    return (got.get("latest") or {}).get("completed")


def checkpoint_stats(rest_url: str, job_id: str) -> dict:
    """The job's checkpoint statistics: counts (restored: how often it restored state, once per
    failover), latest.completed (trigger_timestamp, epoch ms) and latest.restored
    (restore_timestamp). Unlike REST metrics these are not cached for 10 s."""
    return _request("GET", f"{rest_url}/jobs/{job_id}/checkpoints")


def cancel_job(rest_url: str, job_id: str) -> None:
    _request("PATCH", f"{rest_url}/jobs/{job_id}?mode=cancel")


def stop_with_savepoint(rest_url: str, job_id: str, target_dir_uri: str, timeout: float = 300.0,
                        poll: float = 0.5) -> str:
    """Stops the job with a final savepoint (POST /jobs/:id/stop, no drain: windows are not fired
    to the end of time, the job can go on from the savepoint). Returns the savepoint's location."""
    trigger = _request("POST", f"{rest_url}/jobs/{job_id}/stop",
                       {"targetDirectory": target_dir_uri, "drain": False})["request-id"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = _request("GET", f"{rest_url}/jobs/{job_id}/savepoints/{trigger}")
        if got.get("status", {}).get("id") == "COMPLETED":
            op = got.get("operation") or {}
            if "location" in op:
                return op["location"]
            cause = op.get("failure-cause", {})
            text = cause.get("stack-trace") or cause.get("class") or str(cause)
            raise RestError(f"stop with savepoint of {job_id} failed: " + text.strip().splitlines()[0])
        time.sleep(poll)
    raise RestError(f"stop with savepoint of {job_id}: no result after {timeout:.0f}s (trigger {trigger})")


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
