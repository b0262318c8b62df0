"""Start and stop the local broker (tansu), its optional object store (SeaweedFS) and Redis:
loopback only, pid files and logs under the state folder, and `stop` touches only processes this
project started (checked by pid file and command line)."""
from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable


class ServiceError(RuntimeError):
    pass


@dataclass(frozen=True)
class Service:
    name: str
    argv: list
    port: int
    env: dict | None = field(default=None, repr=False, compare=False)  # the whole environment; None: inherit
    ready: Callable[[], str | None] | None = field(default=None, repr=False, compare=False)  # None when ready
    other_ports: tuple = ()  # further loopback ports it listens on (checked free before a start)
    start_timeout: float = 15.0
    stop_timeout: float = 10.0  # SIGTERM, then SIGKILL after this long

    def pid_file(self, state_dir: Path) -> Path:
        return state_dir / "run" / f"{self.name}.pid"

    def log_file(self, state_dir: Path) -> Path:
        return state_dir / "logs" / f"{self.name}.log"


def tansu_service(tansu: Path, port: int, storage: str = "memory://tansu/", env: dict | None = None,
                  advertised_port: int | None = None) -> Service:
    """`storage`: memory://tansu/ (nothing survives a restart) or s3://<bucket>/ with `env` from
    s3_env (the object store's endpoint and credentials). `advertised_port`: the port clients are
    sent to in metadata when it is not `port` (behind the TLS terminator)."""
    url = f"tcp://127.0.0.1:{port}"
    advertised = f"tcp://127.0.0.1:{advertised_port or port}"
    return Service("tansu", [str(tansu), "broker", "--listener-url", url, "--advertised-listener-url", advertised,
                             "--storage-engine", storage], port, env=env)


def broker_tls_service(port: int, broker_port: int, cert: Path, key: Path, client_ca: Path | None = None) -> Service:
    """TLS in front of the broker: socat takes TLS connections on `port` and forwards each, in
    plain TCP over loopback, to tansu on `broker_port`. WHY not tansu's own TLS: tansu 0.6.0 takes
    --cert and --key as mutually exclusive options (one clap group) and needs both, so its TLS
    listener cannot be switched on (docs/operations.md "Kafka security"). With `client_ca`, a client must
    present a certificate signed by it (mutual TLS)."""
    socat = shutil.which("socat") or "/usr/bin/socat"
    verify = f"verify=1,cafile={client_ca}" if client_ca else "verify=0"
    # socat splits its address on ',' and ':': the config rejects such file names (settings/config.py)
    listen = f"OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,cert={cert},key={key},{verify}"
    return Service("broker-tls", [socat, listen, f"TCP:127.0.0.1:{broker_port}"], port)


SEAWEEDFS_INTERNAL_PORTS = 7  # master, volume, filer (HTTP and gRPC each) and the S3 gateway's gRPC


def s3_env(creds, endpoint: str | None = None) -> dict:
    """This process's environment without any AWS_* variable, plus the S3 credentials (which both
    SeaweedFS and tansu read from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY) and, with `endpoint`,
    what tansu's S3 client needs to reach the local store over plain HTTP."""
    from stack.s3 import REGION

    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID=creds.access_key, AWS_SECRET_ACCESS_KEY=creds.secret_key)
    if endpoint:
        env.update(AWS_ENDPOINT=endpoint, AWS_ALLOW_HTTP="true", AWS_DEFAULT_REGION=REGION, AWS_REGION=REGION)
    return env


def seaweedfs_service(weed: Path, s3_port: int, internal_from: int, data_dir: Path, creds=None,
                      bucket: str = "tansu") -> Service:
    """SeaweedFS in one process (`weed server`: master, volume server, filer, S3 gateway), every
    port on loopback: the S3 endpoint on `s3_port`, the rest on SEAWEEDFS_INTERNAL_PORTS ports
    from `internal_from`. Data (volumes and the filer's metadata) under `data_dir`. With `creds`
    the S3 API takes only those credentials and the service is ready once `bucket` exists and
    takes writes; without them (for stop/status) it cannot be started."""
    from stack import s3

    m, mg, v, vg, f, fg, sg = range(internal_from, internal_from + SEAWEEDFS_INTERNAL_PORTS)
    argv = [str(weed), "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={data_dir}",
            f"-master.port={m}", f"-master.port.grpc={mg}", f"-volume.port={v}", f"-volume.port.grpc={vg}",
            "-filer", f"-filer.port={f}", f"-filer.port.grpc={fg}",
            "-s3", f"-s3.port={s3_port}", f"-s3.port.grpc={sg}", "-s3.port.iceberg=0", "-s3.port.lance=0",
            # unix sockets next to the data (the defaults are shared names in /tmp)
            f"-filer.localSocket={data_dir / 'filer.sock'}", f"-s3.localSocket={data_dir / 's3.sock'}",
            # one master: elect itself in ~1 s instead of ~10 s on a restart
            "-master.electionTimeout=1s", "-volume.max=0", "-master.volumeSizeLimitMB=1024",
            "-volume.preStopSeconds=0", "-master.telemetry=false"]
    endpoint = f"http://127.0.0.1:{s3_port}"
    ready = (lambda: s3.bucket_problem(endpoint, bucket, creds)) if creds else None
    # its filer waits 15 s for its own metadata streams on SIGTERM; a longer grace than that
    return Service("seaweedfs", argv, s3_port, env=s3_env(creds) if creds else None, ready=ready,
                   other_ports=tuple(range(internal_from, internal_from + SEAWEEDFS_INTERNAL_PORTS)),
                   start_timeout=60.0, stop_timeout=20.0)


def redis_service(port: int, data_dir: Path) -> Service:
    server = shutil.which("redis-server") or "/usr/bin/redis-server"
    return Service("redis", [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--daemonize", "no", "--dir", str(data_dir),
                             "--protected-mode", "yes"], port)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


# Ports free_port hands out: below the kernel's ephemeral range, from here up
FREE_PORTS_FROM = 10_000
_given: set[int] = set()  # by free_port in this process


def free_port_range() -> range:
    """The loopback ports free_port chooses from: FREE_PORTS_FROM up to the kernel's ephemeral range.
    WHY not the kernel's own choice (a bind to port 0): that is an ephemeral port, from the range
    the kernel also hands out as the local port of every outgoing connection (each Kafka, Redis and
    Flink client here makes many), so one of them could take the port before the service bound it,
    in this process or in another test process beside it."""
    try:
        ephemeral_from = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_from = 32_768  # Linux's default
    return range(FREE_PORTS_FROM, max(ephemeral_from, FREE_PORTS_FROM + 1_000))


def free_port() -> int:
    """A loopback port no socket is bound to now, for a service started next: at random from
    free_port_range, never the same one twice in a process (a service given a port may not have
    bound it yet)."""
    ports = free_port_range()
    rng = random.SystemRandom()  # two test processes must not draw the same sequence
    for _ in range(1_000):
        port = rng.choice(ports)
        if port in _given:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _given.add(port)
        return port
    raise ServiceError(f"no free loopback port in {min(ports)}-{max(ports)} after 1,000 tries")


def _alive_pid(svc: Service, state_dir: Path) -> int | None:
    pf = svc.pid_file(state_dir)
    if not pf.exists():
        return None
    try:
        pid = int(pf.read_text().strip())
        # redis-server rewrites its argv to "redis-server host:port": compare the program only
        program = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode().split(" ")[0]
    except (ValueError, OSError, IndexError):
        return None
    return pid if Path(program).name == Path(svc.argv[0]).name else None


def start(svc: Service, state_dir: Path, timeout: float | None = None) -> int:
    """Starts the service unless this state folder's instance already runs. Returns its pid."""
    pid = _alive_pid(svc, state_dir)
    if pid:
        return pid
    for port in (svc.port, *svc.other_ports):
        if port_open(port):
            raise ServiceError(f"{svc.name}: port {port} is taken by another process; "
                               f"choose another port in the config or with an environment variable")
    for d in (svc.pid_file(state_dir).parent, svc.log_file(state_dir).parent):
        d.mkdir(parents=True, exist_ok=True)
    log = open(svc.log_file(state_dir), "ab")
    proc = subprocess.Popen(svc.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True, env=svc.env)
    svc.pid_file(state_dir).write_text(str(proc.pid))
    timeout = svc.start_timeout if timeout is None else timeout
    deadline = time.monotonic() + timeout
    problem = f"did not open port {svc.port}"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServiceError(f"{svc.name} exited with {proc.returncode}; see {svc.log_file(state_dir)}")
        if port_open(svc.port):
            problem = svc.ready() if svc.ready else None
            if problem is None:
                return proc.pid
            time.sleep(0.2)
        time.sleep(0.05)
    stop(svc, state_dir)
    raise ServiceError(f"{svc.name} not ready in {timeout}s ({problem}); see {svc.log_file(state_dir)}")


def stop(svc: Service, state_dir: Path, timeout: float | None = None) -> bool:
    """Stops the instance this state folder started, if any. Returns whether one was running."""
    pid = _alive_pid(svc, state_dir)
    svc.pid_file(state_dir).unlink(missing_ok=True)
    if not pid:
        return False
    timeout = svc.stop_timeout if timeout is None else timeout
    os.kill(pid, signal.SIGTERM)
    if not wait_gone(pid, svc.port, timeout):
        os.kill(pid, signal.SIGKILL)
        wait_gone(pid, svc.port, 5.0)
    return True


def wait_gone(pid: int, port: int, timeout: float) -> bool:
    """Waits until the process has exited and its port is closed (a multi-threaded process's
    leader shows as a zombie while its other threads, and its sockets, are still going away)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (not Path(f"/proc/{pid}").exists() or _zombie(pid)) and not port_open(port):
            return True
        time.sleep(0.05)
    return False


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


def status(svc: Service, state_dir: Path) -> str:
    pid = _alive_pid(svc, state_dir)
    return f"{svc.name}: running (pid {pid}, port {svc.port})" if pid else f"{svc.name}: stopped"
