"""Running the jobs on a standalone Flink cluster. fyp/cli.py hooks these in with
`add_commands(subparsers, load_cfg)`; each handler takes the parsed arguments.

    fyp cluster up|down|status                          the local standalone cluster (stack/flink_cluster.py)
    fyp submit JOB [--jobmanager HOST:PORT] [--from-savepoint PATH | --fresh]
                                                        build the job here, run it there (detached)
    fyp status [--jobmanager HOST:PORT]                 the local stack, then the cluster's jobs
    fyp cancel JOB_ID|NAME [--jobmanager ...]           cancel (state stays in retained checkpoints)
    fyp stop JOB_ID|NAME --savepoint [DIR]              stop with a savepoint, print its path
    fyp notifier                                        the milestone notifier service alone

The cluster runs only the Flink job; the services that take its output run beside it on their
own: `fyp writer` (feature writer), `fyp notifier` (milestones), `fyp alerts run` (spikes).
"""
from __future__ import annotations

import logging
import os
import re
import tempfile
import time
from pathlib import Path

from settings.config import REPO_ROOT, Config
from stack import flink_rest


def project_packages() -> tuple[str, ...]:
    """The project's packages as pyproject.toml lists them for the install."""
    import tomllib

    found = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    return tuple(pattern.rstrip("*") for pattern in found["include"])


# Shipped with every job as python.files: the cluster's Python workers import the submitted version
# of the code (before the venv's editable install), wherever the cluster runs. Flink puts a shipped
# folder itself on the workers' PYTHONPATH, so the packages go in one folder built for the submission.
PACKAGES = project_packages()
JOB_ID = re.compile(r"^[0-9a-f]{32}$")


def jobmanager_url(cfg: Config, jobmanager: str | None) -> tuple[str, str, int]:
    """(REST url, host, port) from HOST:PORT, default the config's cluster.host:cluster.rest_port."""
    if not jobmanager:
        host, port = cfg.cluster.host, cfg.cluster.rest_port
    else:
        target = jobmanager.removeprefix("http://").rstrip("/")
        host, sep, port_s = target.rpartition(":")
        if not sep or not host or not port_s.isdigit():
            raise SystemExit(f"--jobmanager: expected HOST:PORT (the JobManager's REST port), got {jobmanager!r}")
        port = int(port_s)
    return f"http://{host}:{port}", host, port


def _reachable(url: str) -> dict:
    try:
        return flink_rest.overview(url, timeout=5.0)
    except flink_rest.RestError as e:
        raise SystemExit(f"no Flink cluster answers at {url} ({e}); start one with `fyp cluster up` "
                         f"(make cluster-up) or pass --jobmanager HOST:PORT") from None


def _restore_path(text: str) -> str:
    """A savepoint or checkpoint folder (local path or file: URI) as a URI; other schemes as given."""
    if "://" in text and not text.startswith("file:"):
        return text
    p = Path(text.removeprefix("file://").removeprefix("file:")).expanduser().resolve()
    if not (p / "_metadata").exists():
        raise SystemExit(f"{p}: not a savepoint or checkpoint (no _metadata in it)")
    return p.as_uri()


def latest_snapshot(cfg: Config, job_name: str) -> Path | None:
    """The newest retained state of a job: its checkpoints (chk-N) or the savepoints `fyp stop`
    wrote to the default savepoint folder, whichever completed last."""
    from jobs.flink_env import latest_checkpoint

    found = [p for p in [latest_checkpoint(cfg.checkpoint_dir / job_name)] if p is not None]
    found += [m.parent for m in (cfg.savepoint_dir / job_name).glob("savepoint-*/_metadata")]
    return max(found, key=lambda p: (p / "_metadata").stat().st_mtime) if found else None


def stage_packages(dest: Path) -> Path:
    """Copies the project's Python packages into dest/fyp-python (the folder shipped as python.files)."""
    import shutil

    root = dest / "fyp-python"
    for pkg in PACKAGES:
        shutil.copytree(REPO_ROOT / pkg, root / pkg, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return root


def remote_config(cfg: Config, host: str, port: int, restore_uri: str | None, allow_non_restored: bool,
                  python_files: Path) -> Config:
    """The config the job is built with for the cluster: the same Flink settings as `fyp run`
    (jobs/flink_env.py) plus the remote target, detached, and the project's packages as python.files."""
    extra = dict(cfg.flink.extra)
    extra.update({
        "execution.target": "remote",
        "rest.address": host,
        "rest.port": str(port),
        "execution.attached": "false",
        "python.files": str(python_files),
    })
    if restore_uri is not None:
        extra["execution.state-recovery.path"] = restore_uri
    if allow_non_restored:
        extra["execution.state-recovery.ignore-unclaimed-state"] = "true"
    # Python workers must run as processes on the TaskManager ("loopback" exists only in-process)
    flink = cfg.flink.model_copy(update={"extra": extra, "python_worker_mode": "process"})
    return cfg.model_copy(update={"flink": flink})


def submit(cfg: Config, job: str, jobmanager: str | None = None, from_savepoint: str | None = None,
           fresh: bool = False, allow_non_restored: bool = False, wait_s: float = 60.0) -> str:
    """Builds the job with the same code as `fyp run` and submits it to the cluster; returns its
    Flink job id once the cluster runs it (or after `wait_s`)."""
    from stack import procs
    from fyp.runner import JOBS
    from jobs import front

    if job not in JOBS:
        raise SystemExit(f"unknown job {job!r}; jobs: {', '.join(JOBS)}")
    module = JOBS[job]
    url, host, port = jobmanager_url(cfg, jobmanager)
    _reachable(url)
    active = [j for j in flink_rest.jobs(url) if j["name"] == module.JOB_NAME and j["state"] in flink_rest.ACTIVE_STATES]
    if active:
        # two copies would read the same topic and write the same features
        raise SystemExit(f"{job} already runs on {url} as {active[0]['jid']} ({active[0]['state']}); "
                         f"`fyp stop {active[0]['jid']} --savepoint` (or `fyp cancel`) it first")
    if from_savepoint:
        restore = _restore_path(from_savepoint)
        how = f"from {restore}"
    elif fresh:
        restore, how = None, "with fresh state"
    else:
        snap = latest_snapshot(cfg, module.JOB_NAME)
        restore = snap.resolve().as_uri() if snap else None
        how = f"from the latest retained state {restore}" if snap else "with fresh state (nothing retained)"
    try:
        with tempfile.TemporaryDirectory(prefix="fyp-submit-") as tmp:  # read only while submitting
            remote = remote_config(cfg, host, port, restore, allow_non_restored, stage_packages(Path(tmp)))
            handle = front.start(module.build(remote))
            job_id = str(handle.client.get_job_id())
    finally:
        # The client's gateway JVM is done (the job lives on the cluster). py4j objects still alive
        # at interpreter exit would log connection errors once it is gone: silence them.
        procs.terminate_descendants(os.getpid())
        logging.disable(logging.CRITICAL)
    state = _wait_running(url, job_id, wait_s)
    print(f"{job}: submitted to {url} as Flink job {job_id} {how}; state {state}", flush=True)
    print(f"job id: {job_id}", flush=True)
    return job_id


def _wait_running(url: str, job_id: str, wait_s: float) -> str:
    deadline = time.monotonic() + wait_s
    state = "SUBMITTED"
    while time.monotonic() < deadline:
        try:
            state = flink_rest.job_state(url, job_id)
        except flink_rest.RestError:
            pass
        if state == "RUNNING":
            break
        if state in ("FAILED", "CANCELED", "FINISHED"):
            raise SystemExit(f"Flink job {job_id} is {state} right after submission: see {url}/#/job/{job_id}"
                             f"{flink_rest.root_exception(url, job_id)}")
        time.sleep(0.5)
    return state


def _fmt_time(ms: int) -> str:
    if not ms or ms < 0:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000))


def job_lines(url: str) -> list[str]:
    jobs = flink_rest.jobs(url)
    if not jobs:
        return [f"cluster {url}: no jobs"]
    out = [f"cluster {url}:", f"  {'JOB ID':<32}  {'NAME':<14} {'STATE':<11} STARTED"]
    out += [f"  {j['jid']:<32}  {j['name']:<14} {j['state']:<11} {_fmt_time(j.get('start-time', 0))}" for j in jobs]
    return out


def add_commands(subparsers, load_cfg) -> None:
    def jm_arg(p):
        p.add_argument("--jobmanager", metavar="HOST:PORT",
                       help="the JobManager's REST address (default cluster.host:cluster.rest_port)")

    def run(fn):
        return lambda args: fn(load_cfg(args), args)

    c = subparsers.add_parser("cluster", help="the local standalone Flink cluster (JobManager + TaskManager)")
    csub = c.add_subparsers(dest="action", required=True)
    csub.add_parser("up", help="start it (returns once the TaskManager's slots are free)").set_defaults(fn=run(cmd_cluster_up))
    csub.add_parser("down", help="stop it and check it is gone").set_defaults(fn=run(cmd_cluster_down))
    csub.add_parser("status", help="its daemons and slots").set_defaults(fn=run(cmd_cluster_status))

    s = subparsers.add_parser("submit", help="submit a streaming job to a Flink cluster (detached)")
    s.add_argument("job", choices=("features", "engagement", "interests", "trends", "milestones", "spikes"))
    jm_arg(s)
    g = s.add_mutually_exclusive_group()
    g.add_argument("--from-savepoint", metavar="PATH", help="start from this savepoint (or checkpoint)")
    g.add_argument("--fresh", action="store_true", help="start with empty state (default: the latest retained state)")
    s.add_argument("--allow-non-restored-state", action="store_true",
                   help="let an upgraded job drop state of operators it no longer has")
    s.set_defaults(fn=run(cmd_submit))

    ca = subparsers.add_parser("cancel", help="cancel a job on the cluster (by id or name)")
    ca.add_argument("job", metavar="JOB_ID|NAME")
    jm_arg(ca)
    ca.set_defaults(fn=run(cmd_cancel))

    st = subparsers.add_parser("stop", help="stop a job on the cluster with a savepoint (for an upgrade)")
    st.add_argument("job", metavar="JOB_ID|NAME")
    st.add_argument("--savepoint", metavar="DIR", nargs="?", const="",
                    help="where the savepoint goes (default <savepoint_dir>/<job name>)")
    jm_arg(st)
    st.set_defaults(fn=run(cmd_stop))

    # the milestones job's service beside a cluster job (the writer has `fyp writer`, the alerter
    # `fyp alerts run`)
    subparsers.add_parser("notifier", help="the milestone notifier service alone (beside a submitted "
                          "milestones job)").set_defaults(fn=run(cmd_notifier))

    # `fyp status` (fyp/cli.py) shows the local stack: it also lists the cluster's jobs.
    status = subparsers.choices.get("status")
    if status is not None:
        stack_status = status.get_default("fn")
        jm_arg(status)

        def cmd_status_with_jobs(args):
            if stack_status is not None:
                stack_status(args)
            cfg = load_cfg(args)
            url = jobmanager_url(cfg, args.jobmanager)[0]
            try:
                print("\n".join(job_lines(url)))
            except flink_rest.RestError:
                print(f"cluster {url}: not answering (`fyp cluster up` starts the local one)")

        status.set_defaults(fn=cmd_status_with_jobs)


def cmd_cluster_up(cfg: Config, args) -> None:
    from stack import flink_cluster

    try:
        ov = flink_cluster.up(cfg)
    except flink_cluster.ClusterError as e:
        raise SystemExit(f"cluster: {e}") from None
    print(f"Flink {ov.get('flink-version')} cluster at {flink_cluster.rest_url(cfg)}: "
          f"{ov.get('taskmanagers')} taskmanager(s), {ov.get('slots-available')}/{ov.get('slots-total')} slots free")
    print(f"config, logs: {cfg.cluster_dir}")


def cmd_cluster_down(cfg: Config, args) -> None:
    from stack import flink_cluster

    try:
        stopped = flink_cluster.down(cfg)
    except flink_cluster.ClusterError as e:
        raise SystemExit(f"cluster: {e}") from None
    print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))


def cmd_cluster_status(cfg: Config, args) -> None:
    from stack import flink_cluster

    print("\n".join(flink_cluster.status(cfg)))


def cmd_notifier(cfg: Config, args) -> None:
    import threading

    from fyp.runner import make_notifier

    notifier = make_notifier(cfg)
    try:
        notifier.run(threading.Event())
    except KeyboardInterrupt:
        pass
    finally:
        notifier.close()


def cmd_submit(cfg: Config, args) -> None:
    submit(cfg, args.job, args.jobmanager, args.from_savepoint, args.fresh, args.allow_non_restored_state)


def _resolve(url: str, job: str) -> dict:
    try:
        return flink_rest.resolve_job(url, job)
    except flink_rest.RestError as e:
        raise SystemExit(str(e)) from None


def cmd_cancel(cfg: Config, args) -> None:
    url = jobmanager_url(cfg, args.jobmanager)[0]
    _reachable(url)
    j = _resolve(url, args.job)
    try:
        flink_rest.cancel_job(url, j["jid"])
    except flink_rest.RestError as e:
        raise SystemExit(str(e)) from None
    print(f"cancelling {j['name']} {j['jid']} (its retained checkpoints stay under {cfg.checkpoint_dir})")


def cmd_stop(cfg: Config, args) -> None:
    url = jobmanager_url(cfg, args.jobmanager)[0]
    _reachable(url)
    j = _resolve(url, args.job)
    target = Path(args.savepoint).expanduser().resolve() if args.savepoint else cfg.savepoint_dir / j["name"]
    try:
        location = flink_rest.stop_with_savepoint(url, j["jid"], target.resolve().as_uri())
    except flink_rest.RestError as e:
        raise SystemExit(str(e)) from None
    path = location.removeprefix("file:")
    path = "/" + path.lstrip("/") if location.startswith("file:") else path
    print(f"stopped {j['name']} {j['jid']} with a savepoint")
    print(f"savepoint: {path}")
    print(f"resume with: fyp submit {j['name']} --from-savepoint {path}")
