"""Config sections of the platform the features run on: Kafka, Redis, the local stack, Flink and
its standalone cluster, the feature store's writer, the offline log, serving and metrics."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from featurestore.client_settings import ClientSettings
from schemas.durations import Duration
from settings.section import Flag, Section

class TopicsConfig(Section):
    engagement: str = "engagement-events"
    uploads: str = "upload-events"
    notifications: str = "notification-events"
    dead_letter: str = "dead-letter-events"
    late: str = "late-events"
    feature_updates: str = "feature-updates"
    milestone_crossings: str = "milestone-crossings"  # internal: the job's crossings, before dedup
    spike_transitions: str = "spike-transitions"  # internal: the spike job's state changes, before dedup
    spike_alerts: str = "spike-alerts"  # alerts for on-call, one per video per cooldown


class KafkaSecurityConfig(Section):
    """How every Kafka client connects (settings/kafka_clients.py). Files, not secrets: the SASL
    password only from FYP_KAFKA_SASL_PASSWORD, a client key's password only from
    FYP_KAFKA_SSL_KEY_PASSWORD. The password itself is checked where a client is built: a config
    without Kafka use must load without it."""
    protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = "SCRAM-SHA-512"
    sasl_username: str = ""
    ssl_ca_file: str = ""  # PEM CA bundle that signed the broker's certificate; empty: the system's
    # client certificate, for brokers that require one. The JVM clients (Flink) read certificate
    # and key from one PEM file: put both in ssl_cert_file and leave ssl_key_file empty (or equal).
    ssl_cert_file: str = ""
    ssl_key_file: str = ""
    ssl_check_hostname: Flag = True

    @model_validator(mode="after")
    def _combinations(self):
        where = "kafka.security"
        if self.protocol.startswith("SASL_") and not self.sasl_username:
            raise ValueError(f"{where}.protocol {self.protocol} needs {where}.sasl_username "
                             f"(its password comes from FYP_KAFKA_SASL_PASSWORD)")
        files = {"ssl_ca_file": self.ssl_ca_file, "ssl_cert_file": self.ssl_cert_file,
                 "ssl_key_file": self.ssl_key_file}
        if not self.protocol.endswith("SSL"):
            for key, value in files.items():
                if value:  # would be ignored: say so rather than run without the TLS the file suggests
                    raise ValueError(f"{where}.{key} is set but {where}.protocol is {self.protocol} "
                                     f"(TLS files need SSL or SASL_SSL)")
            return self
        for key, value in files.items():
            if value and not Path(value).is_file():
                raise ValueError(f"{where}.{key}: no such file: {value}")
        if self.ssl_key_file and not self.ssl_cert_file:
            raise ValueError(f"{where}.ssl_key_file needs {where}.ssl_cert_file (the client certificate)")
        if self.ssl_key_file and Path(self.ssl_key_file).resolve() != Path(self.ssl_cert_file).resolve():
            # Flink's Kafka client (PEM keystore) reads the certificate chain and key from one file
            raise ValueError(f"{where}.ssl_key_file must be empty or the same file as {where}.ssl_cert_file: "
                             f"put the client certificate and its key in one PEM file")
        return self


class KafkaConfig(Section):
    bootstrap: str = "127.0.0.1:19092"
    partitions: int = Field(2, ge=1)
    topics: TopicsConfig = TopicsConfig()
    security: KafkaSecurityConfig = KafkaSecurityConfig()
    consumer_group: str = "fyp-engagement"
    starting_offsets: Literal["earliest", "group"] = "earliest"  # for a job with no checkpoint


class RedisTlsConfig(Section):
    """Used when redis.url is rediss://. Files, not secrets: the key file's path only."""
    ca_file: str = ""
    cert_file: str = ""  # client certificate, for servers that require one
    key_file: str = ""
    check_hostname: Flag = True


class RedisConfig(Section):
    url: str = "redis://127.0.0.1:16379/0"
    socket_timeout: Duration = Field(2000, gt=0)
    # ACL users (featurestore/acl.py); empty: the connection's default user. Passwords only from
    # the environment: FYP_REDIS_WRITER_PASSWORD, FYP_REDIS_READER_PASSWORD.
    writer_user: str = ""
    reader_user: str = ""
    tls: RedisTlsConfig = RedisTlsConfig()

    @field_validator("url")
    @classmethod
    def _no_password(cls, url: str) -> str:
        if re.match(r"^rediss?://[^/@]*:[^/@]+@", url):
            raise ValueError("redis.url must not carry a password; set FYP_REDIS_WRITER_PASSWORD / "
                             "FYP_REDIS_READER_PASSWORD with redis.writer_user / reader_user instead")
        return url


class StackConfig(Section):
    state_dir: str = ".fyp"
    artifacts_dir: str = ""  # broker binary and jars; default: <state_dir>
    broker_port: int = Field(19092, ge=1, le=65535)
    redis_port: int = Field(16379, ge=1, le=65535)
    # memory: tansu keeps topics in memory (lost on a broker restart). s3: tansu stores them in a
    # local SeaweedFS (started by `fyp up`), so a broker restart loses nothing. S3 credentials only
    # from the environment (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY), else generated locally.
    broker_storage: Literal["memory", "s3"] = "memory"
    seaweedfs_port: int = Field(18333, ge=1, le=65535)  # its S3 endpoint
    # the first of 7 consecutive ports (master, volume, filer, gRPC)
    seaweedfs_internal_ports: int = Field(18340, ge=1, le=65535 - 6)
    seaweedfs_dir: str = ""  # its data; default <state_dir>/seaweedfs
    s3_bucket: str = Field("tansu", pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")  # the broker's bucket
    # TLS on broker_port (server certificate chain and key, PEM): a TLS terminator (socat) listens
    # there and tansu moves to broker_internal_port on loopback. Clients then need
    # kafka.security.protocol SSL and kafka.security.ssl_ca_file (docs/operations.md "Kafka security").
    broker_tls_cert: str = ""
    broker_tls_key: str = ""
    broker_tls_client_ca: str = ""  # when set, clients must present a certificate it signed
    broker_internal_port: int = Field(19093, ge=1, le=65535)

    @model_validator(mode="after")
    def _ports_and_tls(self):
        ports = [self.seaweedfs_port, *range(self.seaweedfs_internal_ports, self.seaweedfs_internal_ports + 7),
                 self.broker_port, self.redis_port]
        if self.broker_storage == "s3" and len(set(ports)) != len(ports):
            raise ValueError("stack.seaweedfs_port, the 7 ports from stack.seaweedfs_internal_ports, "
                             "broker_port and redis_port must not overlap")
        files = {"broker_tls_cert": self.broker_tls_cert, "broker_tls_key": self.broker_tls_key,
                 "broker_tls_client_ca": self.broker_tls_client_ca}
        if not any(files.values()):
            return self
        if not (self.broker_tls_cert and self.broker_tls_key):
            raise ValueError("stack.broker_tls_cert and stack.broker_tls_key go together")
        for key, value in files.items():
            if value and (not Path(value).is_file() or re.search(r"[,:!]", value)):
                # socat, the TLS terminator, splits its address on these characters
                raise ValueError(f"stack.{key}: expected an existing file whose path has no ',' ':' '!', "
                                 f"got {value!r}")
        if self.broker_internal_port in (self.broker_port, self.redis_port):
            raise ValueError("stack.broker_internal_port must be a port other than broker_port and redis_port")
        return self


class FlinkConfig(Section):
    parallelism: int = Field(2, ge=1)
    checkpoint_interval: Duration = Field(10_000, gt=0)
    checkpoint_dir: str = ""  # default: <state_dir>/checkpoints
    bundle_time: Duration = 100
    bundle_size: int = Field(5000, ge=1)
    state_cache_size: int = Field(100_000, ge=1)
    # how often sources emit watermarks, and the longest a record waits in a network buffer: both
    # are in every feature's freshness (measured on 2 cores: 100 / 20 ms against 200 / 100 ms took the
    # combined job's p99 at 20K events/s from 2.26-3.79 s to 2.11-2.21 s; a 20 ms watermark against
    # 100 ms then took its p50 down in five alternating pairs out of five; backfill rates unchanged)
    watermark_interval: Duration = Field(20, gt=0)
    buffer_timeout: Duration = 20
    # process: a worker per subtask | loopback: in the driver
    python_worker_mode: Literal["process", "loopback"] = "process"
    # The nice value of the spike book's worker process (process mode only; 0 leaves it alone). Its
    # once-a-minute step (~0.3 s of Python and a state write at 27K videos) lands on the same cores
    # and the same moment as the 1 s step's updates; a lower priority lets the per-second path go
    # first (docs/benchmarks.md: freshness at 20K events/s). Unused in loopback mode, where the
    # book shares the driver with the feature writer.
    spike_worker_nice: int = Field(10, ge=0, le=19)
    # on-periodic (production) | on-event (exact, for tests)
    watermark_emit: Literal["on-periodic", "on-event"] = "on-periodic"
    # 0 = off. With idleness on, a partition that goes quiet stops holding the watermark back; when
    # it resumes with older events, windows downstream can drop them as late behind the routing
    # step's back (measured: a bench marker event vanished). Off by default: never drop silently.
    source_idle_timeout: Duration = Field(0, ge=0)
    extra: dict[str, Any] = {}  # passed through verbatim to the Flink configuration
    # Heap of the JVM that runs the embedded mini-cluster (PyFlink's gateway, started by the
    # driver): without a bound the JVM's default, a quarter of the machine, lets the heap grow to
    # 6 GB on 24 GB where every family ran as fast in 3 GB. Ignored when JVM_ARGS is set (it is
    # then the user's); a job on a Flink cluster has `cluster.taskmanager_memory` instead.
    local_heap: str = Field("4g", pattern=r"^[1-9][0-9]*[mMgG]$")
    # Its garbage collector. The parallel collector costs the jobs less CPU than G1 (the JDK's
    # default): every family over 2M events ran 12 % faster on 2 cores, in 3.3 GB instead of 4.3,
    # with the same freshness at 20K events/s live.
    local_gc: Literal["parallel", "g1"] = "parallel"
    # Its JIT compilers. "lean-c2" (jobs/flink_env.py JIT_OPTIONS) has the optimizing compiler
    # take fewer and smaller methods than the JDK's default ("tiered"): on 2 cores the sparse
    # engagement backfill took 23 % less time, every family 10 % less, dense engagement 2-4 %
    # less (docs/benchmarks.md). "auto" takes lean-c2 for a backfill and tiered for a streaming
    # job (jobs/flink_env.py jit_of). "c1" stops at the quick compiler, which gets a
    # short job going sooner (the planner's and the runtime's code is cold in every new JVM) and
    # runs a long one slower. The tests use "c1" (docs/testing.md).
    local_jit: Literal["auto", "lean-c2", "tiered", "c1"] = "auto"


class ClusterConfig(Section):
    """The standalone Flink cluster of `fyp cluster up` (one JobManager, one TaskManager, from the
    apache-flink package) and the default target of `fyp submit` / `status` / `stop` / `cancel`."""
    host: str = "127.0.0.1"  # the JobManager's address (REST and RPC); loopback by default
    rest_port: int = Field(18081, ge=1, le=65535)
    rpc_port: int = Field(16123, ge=1, le=65535)
    # process sizes (Flink memory syntax: 1024m, 1g, ...)
    jobmanager_memory: str = Field("1g", pattern=r"(?i)^\s*\d+\s*(m|mb|g|gb)\s*$")
    taskmanager_memory: str = Field("2560m", pattern=r"(?i)^\s*\d+\s*(m|mb|g|gb)\s*$")
    slots: int = Field(0, ge=0)  # TaskManager slots; 0 = flink.parallelism
    dir: str = ""  # its config, logs and pid files; default <state_dir>/cluster
    savepoint_dir: str = ""  # default target of `fyp stop --savepoint`; default <state_dir>/savepoints
    startup_timeout: Duration = Field(120_000, gt=0)  # `cluster up` waits this long for a free slot
    # How fast the JobManager declares a crashed TaskManager dead and restarts its tasks elsewhere
    # (Flink's heartbeat.interval / heartbeat.timeout; Flink's own defaults are 10 s / 50 s, so a
    # kill -9 of a TaskManager stalls the job for up to 50 s; shorter costs a little RPC traffic)
    heartbeat_interval: Duration = Field(2_000, gt=0)
    heartbeat_timeout: Duration = Field(10_000, gt=0)

    @model_validator(mode="after")
    def _distinct_ports(self):
        if self.rest_port == self.rpc_port:
            raise ValueError("cluster.rest_port and cluster.rpc_port must be distinct ports")
        return self


class WriterConfig(Section):
    batch_max: int = Field(2000, ge=1)
    poll_timeout: Duration = Field(50, gt=0)
    retry_backoff_max: Duration = Field(5000, gt=0)
    # records fetched ahead of the writer, per partition (librdkafka's queued.max.messages.kbytes
    # and max.partition.fetch.bytes): bounds the writer's memory while Redis is slow
    fetch_ahead_kb: int = Field(16384, ge=1)


FEATURE_TTL_GROUPS = ("video_engagement", "user_interests", "region_trends", "video_milestones", "video_spikes",
                      "spike_alerts")


class FeatureStoreConfig(Section):
    # per feature group, how long a value lives in Redis after its last write
    ttl: dict[str, Duration] = {"video_engagement": "25h", "user_interests": "2h", "region_trends": "2h",
                                "video_milestones": "30d", "video_spikes": "6h", "spike_alerts": "7d"}
    writer: WriterConfig = WriterConfig()

    @field_validator("ttl")
    @classmethod
    def _every_group(cls, ttl: dict) -> dict:
        missing = [g for g in FEATURE_TTL_GROUPS if g not in ttl]
        if missing:
            raise ValueError(f"featurestore.ttl.{missing[0]} is required")
        return ttl


class OfflineConfig(Section):
    """The offline feature log (featurestore/offline_log.py): every update the writer stores, in Parquet."""
    enabled: Flag = False  # opt-in: a writer that starts a log replays the retained topic into it
    root: str = ""  # default: <state_dir>/offline
    flush_rows: int = Field(50_000, ge=1)  # a buffer of this many rows is written at once ...
    flush_interval: Duration = Field(10_000, ge=1)  # ... and no row waits longer than this


class HttpServerConfig(Section):
    host: str = "127.0.0.1"
    port: int = Field(18080, ge=0, le=65535)
    workers: int = Field(1, ge=1)  # server processes (uvicorn workers); each has its own client and cache


class ServingConfig(ClientSettings):
    """The read path: the read client's settings (featurestore/client_settings.py) and `fyp serve`."""
    defaults: dict[str, Any] = {"spike_damping": 1.0, "spike_skip_weight": 1.0, "spike_state": "normal"}
    http: HttpServerConfig = HttpServerConfig()


class ObservabilityConfig(Section):
    """The Prometheus endpoint of `fyp run` / `fyp writer` (docs/operations.md "Observability")."""
    host: str = "127.0.0.1"
    port: int = Field(0, ge=0, le=65535)  # 0: no endpoint; configs/local.yaml sets 19464
    # the embedded mini-cluster's REST port, read for job metrics; 0: a free one
    flink_rest_port: int = Field(0, ge=0, le=65535)
