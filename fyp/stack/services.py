"""Start and stop the local broker (tansu) and Redis: loopback only, pid files and logs under the
state folder, and `stop` touches only processes this project started (checked by pid file and
command line)."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


class ServiceError(RuntimeError):
    pass


@dataclass(frozen=True)
class Service:
    name: str
    argv: list
    port: int

    def pid_file(self, state_dir: Path) -> Path:
        return state_dir / "run" / f"{self.name}.pid"

    def log_file(self, state_dir: Path) -> Path:
        return state_dir / "logs" / f"{self.name}.log"


def tansu_service(tansu: Path, port: int) -> Service:
    url = f"tcp://127.0.0.1:{port}"
    return Service("tansu", [str(tansu), "broker", "--listener-url", url, "--advertised-listener-url", url,
                             "--storage-engine", "memory://tansu/"], port)


def redis_service(port: int, data_dir: Path) -> Service:
    server = shutil.which("redis-server") or "/usr/bin/redis-server"
    return Service("redis", [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--daemonize", "no", "--dir", str(data_dir),
                             "--protected-mode", "yes"], port)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


def start(svc: Service, state_dir: Path, timeout: float = 15.0) -> int:
    """Starts the service unless this state folder's instance already runs. Returns its pid."""
    pid = _alive_pid(svc, state_dir)
    if pid:
        return pid
    if port_open(svc.port):
        raise ServiceError(f"{svc.name}: port {svc.port} is taken by another process; "
                           f"choose another port in the config or with an environment variable")
    for d in (svc.pid_file(state_dir).parent, svc.log_file(state_dir).parent):
        d.mkdir(parents=True, exist_ok=True)
    log = open(svc.log_file(state_dir), "ab")
    proc = subprocess.Popen(svc.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    svc.pid_file(state_dir).write_text(str(proc.pid))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServiceError(f"{svc.name} exited with {proc.returncode}; see {svc.log_file(state_dir)}")
        if port_open(svc.port):
            return proc.pid
        time.sleep(0.05)
    stop(svc, state_dir)
    raise ServiceError(f"{svc.name} did not open port {svc.port} in {timeout}s; see {svc.log_file(state_dir)}")


def stop(svc: Service, state_dir: Path, timeout: float = 10.0) -> bool:
    """Stops the instance this state folder started, if any. Returns whether one was running."""
    pid = _alive_pid(svc, state_dir)
    svc.pid_file(state_dir).unlink(missing_ok=True)
    if not pid:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists() or _zombie(pid):
            return True
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    return True


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


def status(svc: Service, state_dir: Path) -> str:
    pid = _alive_pid(svc, state_dir)
    return f"{svc.name}: running (pid {pid}, port {svc.port})" if pid else f"{svc.name}: stopped"
