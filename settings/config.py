"""YAML configuration validated into typed objects.

Every key is checked: an unknown or mistyped key fails at load with the key's path and the file.
Connection settings can be overridden from the environment (FYP_KAFKA_BOOTSTRAP, FYP_REDIS_URL,
...); secrets are only ever read from the environment.
"""
from __future__ import annotations

import dataclasses
import os
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from operators.trends import TrendWeights

REPO_ROOT = Path(__file__).resolve().parent.parent


def _in_repo(path: str) -> Path:
    p = Path(path)
    return p if p.is_absolute() else REPO_ROOT / p


DEFAULT_CONFIG = REPO_ROOT / "configs" / "local.yaml"

_DURATION = re.compile(r"^\s*(\d+)\s*(ms|s|m|min|h|d)\s*$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}


class ConfigError(ValueError):
    pass


def parse_duration_ms(value: object, where: str) -> int:
    """'500ms', '2s', '1h', '24h', '7d' or a bare integer of milliseconds."""
    if isinstance(value, bool):
        raise ConfigError(f"{where}: expected a duration like '2s' or '1h', got {value!r}")
    if isinstance(value, int):
        return value
    m = _DURATION.match(str(value))
    if not m:
        raise ConfigError(f"{where}: expected a duration like '2s' or '1h', got {value!r}")
    return int(m.group(1)) * _UNIT_MS[m.group(2)]


def format_duration(ms: int) -> str:
    for unit in ("d", "h", "m", "s"):
        if ms % _UNIT_MS[unit] == 0 and ms >= _UNIT_MS[unit]:
            return f"{ms // _UNIT_MS[unit]}{unit}"
    return f"{ms}ms"


Duration = typing.NewType("Duration", int)  # milliseconds; YAML accepts '2s', '1h', ...


@dataclass
class TopicsConfig:
    engagement: str = "engagement-events"
    uploads: str = "upload-events"
    notifications: str = "notification-events"
    dead_letter: str = "dead-letter-events"
    late: str = "late-events"
    feature_updates: str = "feature-updates"
    milestone_crossings: str = "milestone-crossings"  # internal: the job's crossings, before dedup
    spike_transitions: str = "spike-transitions"  # internal: the spike job's state changes, before dedup
    spike_alerts: str = "spike-alerts"  # alerts for on-call, one per video per cooldown


KAFKA_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN")


@dataclass
class KafkaSecurityConfig:
    """How every Kafka client connects (settings/kafka_clients.py). Files, not secrets: the SASL
    password only from FYP_KAFKA_SASL_PASSWORD, a client key's password only from
    FYP_KAFKA_SSL_KEY_PASSWORD."""
    protocol: str = "PLAINTEXT"  # PLAINTEXT | SSL | SASL_PLAINTEXT | SASL_SSL
    sasl_mechanism: str = "SCRAM-SHA-512"  # SCRAM-SHA-512 | SCRAM-SHA-256 | PLAIN
    sasl_username: str = ""
    ssl_ca_file: str = ""  # PEM CA bundle that signed the broker's certificate; empty: the system's
    # client certificate, for brokers that require one. The JVM clients (Flink) read certificate
    # and key from one PEM file: put both in ssl_cert_file and leave ssl_key_file empty (or equal).
    ssl_cert_file: str = ""
    ssl_key_file: str = ""
    ssl_check_hostname: bool = True


@dataclass
class KafkaConfig:
    bootstrap: str = "127.0.0.1:19092"
    partitions: int = 2
    topics: TopicsConfig = field(default_factory=TopicsConfig)
    security: KafkaSecurityConfig = field(default_factory=KafkaSecurityConfig)
    consumer_group: str = "fyp-engagement"
    starting_offsets: str = "earliest"  # for a job with no checkpoint: earliest | group


@dataclass
class RedisTlsConfig:
    """Used when redis.url is rediss://. Files, not secrets: the key file's path only."""
    ca_file: str = ""
    cert_file: str = ""  # client certificate, for servers that require one
    key_file: str = ""
    check_hostname: bool = True


@dataclass
class RedisConfig:
    url: str = "redis://127.0.0.1:16379/0"
    socket_timeout: Duration = Duration(2000)
    # ACL users (featurestore/acl.py); empty: the connection's default user. Passwords only from
    # the environment: FYP_REDIS_WRITER_PASSWORD, FYP_REDIS_READER_PASSWORD.
    writer_user: str = ""
    reader_user: str = ""
    tls: RedisTlsConfig = field(default_factory=RedisTlsConfig)


@dataclass
class StackConfig:
    state_dir: str = ".fyp"
    artifacts_dir: str = ""  # broker binary and jars; default: <state_dir>
    broker_port: int = 19092
    redis_port: int = 16379
    # memory: tansu keeps topics in memory (lost on a broker restart). s3: tansu stores them in a
    # local SeaweedFS (started by `fyp up`), so a broker restart loses nothing. S3 credentials only
    # from the environment (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY), else generated locally.
    broker_storage: str = "memory"
    seaweedfs_port: int = 18333  # its S3 endpoint
    seaweedfs_internal_ports: int = 18340  # the first of 7 consecutive ports (master, volume, filer, gRPC)
    seaweedfs_dir: str = ""  # its data; default <state_dir>/seaweedfs
    s3_bucket: str = "tansu"  # the broker's bucket
    # TLS on broker_port (server certificate chain and key, PEM): a TLS terminator (socat) listens
    # there and tansu moves to broker_internal_port on loopback. Clients then need
    # kafka.security.protocol SSL and kafka.security.ssl_ca_file (docs/operations.md "Kafka security").
    broker_tls_cert: str = ""
    broker_tls_key: str = ""
    broker_tls_client_ca: str = ""  # when set, clients must present a certificate it signed
    broker_internal_port: int = 19093


@dataclass
class FlinkConfig:
    parallelism: int = 2
    checkpoint_interval: Duration = Duration(10_000)
    checkpoint_dir: str = ""  # default: <state_dir>/checkpoints
    bundle_time: Duration = Duration(100)
    bundle_size: int = 5000
    state_cache_size: int = 100_000
    watermark_interval: Duration = Duration(200)  # how often sources emit watermarks
    buffer_timeout: Duration = Duration(100)  # longest a record waits in a network buffer
    python_worker_mode: str = "process"  # process (a worker per subtask) | loopback (in the driver)
    watermark_emit: str = "on-periodic"  # on-periodic (production) | on-event (exact, for tests)
    # 0 = off. With idleness on, a partition that goes quiet stops holding the watermark back; when
    # it resumes with older events, windows downstream can drop them as late behind the routing
    # step's back (measured: a bench marker event vanished). Off by default: never drop silently.
    source_idle_timeout: Duration = Duration(0)
    extra: dict = field(default_factory=dict)  # passed through verbatim to the Flink configuration


@dataclass
class ClusterConfig:
    """The standalone Flink cluster of `fyp cluster up` (one JobManager, one TaskManager, from the
    apache-flink package) and the default target of `fyp submit` / `status` / `stop` / `cancel`."""
    host: str = "127.0.0.1"  # the JobManager's address (REST and RPC); loopback by default
    rest_port: int = 18081
    rpc_port: int = 16123
    jobmanager_memory: str = "1g"  # process sizes (Flink memory syntax: 1024m, 1g, ...)
    taskmanager_memory: str = "2560m"
    slots: int = 0  # TaskManager slots; 0 = flink.parallelism
    dir: str = ""  # its config, logs and pid files; default <state_dir>/cluster
    savepoint_dir: str = ""  # default target of `fyp stop --savepoint`; default <state_dir>/savepoints
    startup_timeout: Duration = Duration(120_000)  # `cluster up` waits this long for a free slot
    # How fast the JobManager declares a crashed TaskManager dead and restarts its tasks elsewhere
    # (Flink's heartbeat.interval / heartbeat.timeout; Flink's own defaults are 10 s / 50 s, so a
    # kill -9 of a TaskManager stalls the job for up to 50 s; shorter costs a little RPC traffic)
    heartbeat_interval: Duration = Duration(2_000)
    heartbeat_timeout: Duration = Duration(10_000)


@dataclass
class ScoreWeights:
    watch_time: float = 1.0
    liked: float = 2.0
    shared: float = 3.0
    commented: float = 2.5
    skipped: float = 1.5


@dataclass
class EngagementConfig:
    windows: list = field(default_factory=lambda: ["1h", "6h", "24h"])
    tile: Duration = Duration(60_000)
    emit_interval: Duration = Duration(1000)
    max_out_of_orderness: Duration = Duration(500)
    allowed_lateness: Duration = Duration(60_000)
    score_weights: ScoreWeights = field(default_factory=ScoreWeights)

    @property
    def window_ms(self) -> list[int]:
        return [parse_duration_ms(w, "engagement.windows") for w in self.windows]


@dataclass
class EnrichmentConfig:
    """Video metadata (creator, category) from upload-events, joined as of each view's event time."""
    # A view waits until the uploads' watermark passes its event time; with no upload for this
    # long the uploads stream counts as idle and views go on without waiting (as `unknown`).
    metadata_wait: Duration = Duration(10_000)


@dataclass
class InterestWeights:
    """Engagement strength of one view (the interest it adds to its category and creator)."""
    completion: float = 1.0  # times min(1, watch_time / duration)
    liked: float = 2.0
    shared: float = 3.0
    commented: float = 2.0
    rewatch: float = 0.5  # per rewatch, at most 5 counted
    fast_skip: float = 1.5  # subtracted for a skip within fast_skip_ms
    fast_skip_ms: Duration = Duration(3000)


@dataclass
class InterestsConfig:
    decay: Duration = Duration(1_800_000)  # time constant of the exponential decay (30 min)
    top_n: int = 10
    prune_below: float = 0.05  # an item whose |weight| is below this is not written
    emit_interval: Duration = Duration(1000)  # a user's views are taken in steps of this much event time
    forget_after: Duration = Duration(21_600_000)  # an item viewed again after this gap restarts from 0
    min_events: int = 3  # a user with fewer events keeps state only newcomer_ttl
    newcomer_ttl: Duration = Duration(120_000)
    idle_ttl: Duration = Duration(7_200_000)
    weights: InterestWeights = field(default_factory=InterestWeights)


@dataclass
class TrendsConfig:
    windows: list = field(default_factory=lambda: ["15m", "1h"])
    top_k: int = 20
    weights: TrendWeights = field(default_factory=TrendWeights)

    @property
    def window_ms(self) -> list[int]:
        return [parse_duration_ms(w, "trends.windows") for w in self.windows]


@dataclass
class MilestonesConfig:
    thresholds: list = field(default_factory=lambda: [10_000, 100_000, 1_000_000])


@dataclass
class SpikeDamping:
    """Ranking damping of a spiking video (operators/spikes.py)."""
    massive_reach: int = 10_000  # views since the spike started from which the video is decayed
    half_life: Duration = Duration(3_600_000)  # the damping factor halves this often after that
    floor: float = 0.1  # lowest damping factor
    skip_weight: float = 2.0  # weight of a skip during a spike (1.0 otherwise)


@dataclass
class SpikesConfig:
    """Per-video spike state (operators/spikes.py) over per-interval view counts."""
    interval: Duration = Duration(60_000)  # one detector row per video per interval
    rise_score: float = 0.99  # anomaly score from which a video may start rising ...
    min_rate: float = 20.0  # ... with at least this many views in the interval
    rise_growth: float = 3.0  # ... and this many times its baseline rate
    super_rate: float = 100.0  # a rising video is a super-spike from this rate ...
    super_growth: float = 10.0  # ... at this many times its baseline rate (before the spike)
    calm_growth: float = 3.0  # an interval under this growth (or under min_rate) is calm
    calm_intervals: int = 30  # consecutive calm intervals that end a spike
    idle_ttl: Duration = Duration(7_200_000)  # a normal video without views this long loses its state
    history: int = 120  # intervals of views kept per video (baseline, alert plot)
    detector: dict = field(default_factory=dict)  # anomaly.detector.DetectorParams overrides
    damping: SpikeDamping = field(default_factory=SpikeDamping)


@dataclass
class WebhookConfig:
    """One alert receiver. `format`: plain (our JSON), slack (incoming webhook) or alertmanager
    (Alertmanager v2 POST /api/v2/alerts). A header value `$NAME` is read from the environment."""
    name: str = ""
    url: str = ""
    format: str = "plain"
    timeout: Duration = Duration(5000)
    headers: dict = field(default_factory=dict)


@dataclass
class AlertsConfig:
    cooldown: Duration = Duration(21_600_000)  # one alert per video per 6 h of event time, across restarts
    runbook_url: str = "https://github.com/fyp-features/fyp-features/blob/main/docs/runbooks/super-spike.md"
    critical_rate: float = 1000.0  # views per interval from which an alert is critical ...
    critical_regions: int = 3  # ... or from this many regions at once
    retry_initial: Duration = Duration(1000)  # webhook retry backoff, doubling
    retry_max: Duration = Duration(60_000)
    give_up_after: Duration = Duration(86_400_000)  # a delivery older than this is dropped (and logged)
    webhooks: list = field(default_factory=list)  # of WebhookConfig mappings

    @property
    def webhook_configs(self) -> list[WebhookConfig]:
        return [_build(WebhookConfig, w, "alerts.webhooks", f"alerts.webhooks[{i}].")
                for i, w in enumerate(self.webhooks)]


@dataclass
class WriterConfig:
    batch_max: int = 2000
    poll_timeout: Duration = Duration(50)
    retry_backoff_max: Duration = Duration(5000)
    # records fetched ahead of the writer, per partition (librdkafka's queued.max.messages.kbytes
    # and max.partition.fetch.bytes): bounds the writer's memory while Redis is slow
    fetch_ahead_kb: int = 16384


@dataclass
class FeatureStoreConfig:
    ttl: dict = field(default_factory=lambda: {"video_engagement": "25h", "user_interests": "2h",
                                               "region_trends": "2h", "video_milestones": "30d",
                                               "video_spikes": "6h", "spike_alerts": "7d"})
    writer: WriterConfig = field(default_factory=WriterConfig)


@dataclass
class HttpServerConfig:
    host: str = "127.0.0.1"
    port: int = 18080
    workers: int = 1  # server processes (uvicorn workers); each has its own client and cache


@dataclass
class ObservabilityConfig:
    """The Prometheus endpoint of `fyp run` / `fyp writer` (docs/operations.md "Observability")."""
    host: str = "127.0.0.1"
    port: int = 0  # 0: no endpoint; configs/local.yaml sets 19464
    flink_rest_port: int = 0  # the embedded mini-cluster's REST port, read for job metrics; 0: a free one


@dataclass
class ServingConfig:
    """The read path (featurestore/client.py, `fyp serve`)."""
    timeout: Duration = Duration(50)  # a read waits this long for Redis, then falls back
    pool_size: int = 16
    cache_ttl: Duration = Duration(500)  # a value read is served from the local cache this long
    cache_max_entries: int = 100_000
    breaker_failures: int = 3  # reads failing in a row that open the circuit breaker ...
    breaker_open_for: Duration = Duration(1000)  # ... for this long
    defaults: dict = field(default_factory=lambda: {
        "spike_damping": 1.0, "spike_skip_weight": 1.0, "spike_state": "normal"})
    fallback_trends: str = "top_1h"
    http: HttpServerConfig = field(default_factory=HttpServerConfig)

    def client_settings(self):
        from featurestore.client import ClientSettings

        return ClientSettings(timeout_s=self.timeout / 1000, pool_size=self.pool_size,
                              cache_ttl_s=self.cache_ttl / 1000, cache_max_entries=self.cache_max_entries,
                              breaker_failures=self.breaker_failures,
                              breaker_open_for_s=self.breaker_open_for / 1000,
                              defaults=dict(self.defaults), fallback_trends=self.fallback_trends)


@dataclass
class OfflineConfig:
    """The offline feature log (featurestore/offline_log.py): every update the writer stores, in Parquet."""
    enabled: bool = False  # opt-in: a writer that starts a log replays the retained topic into it
    root: str = ""  # default: <state_dir>/offline
    flush_rows: int = 50_000  # a buffer of this many rows is written at once ...
    flush_interval: Duration = Duration(10_000)  # ... and no row waits longer than this


@dataclass
class Config:
    kafka: KafkaConfig = field(default_factory=KafkaConfig)
    redis: RedisConfig = field(default_factory=RedisConfig)
    stack: StackConfig = field(default_factory=StackConfig)
    flink: FlinkConfig = field(default_factory=FlinkConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    engagement: EngagementConfig = field(default_factory=EngagementConfig)
    enrichment: EnrichmentConfig = field(default_factory=EnrichmentConfig)
    interests: InterestsConfig = field(default_factory=InterestsConfig)
    trends: TrendsConfig = field(default_factory=TrendsConfig)
    milestones: MilestonesConfig = field(default_factory=MilestonesConfig)
    spikes: SpikesConfig = field(default_factory=SpikesConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    featurestore: FeatureStoreConfig = field(default_factory=FeatureStoreConfig)
    offline: OfflineConfig = field(default_factory=OfflineConfig)
    serving: ServingConfig = field(default_factory=ServingConfig)
    observability: ObservabilityConfig = field(default_factory=ObservabilityConfig)
    source: str = field(default="<defaults>", compare=False)

    @property
    def state_dir(self) -> Path:
        return _in_repo(self.stack.state_dir)

    def _folder(self, configured: str, default: Path) -> Path:
        """A configured folder (relative: to the repository), or `default` when none is set."""
        return _in_repo(configured) if configured else default

    @property
    def artifacts_dir(self) -> Path:
        return self._folder(self.stack.artifacts_dir, self.state_dir)

    @property
    def seaweedfs_dir(self) -> Path:
        return self._folder(self.stack.seaweedfs_dir, self.state_dir / "seaweedfs")

    @property
    def checkpoint_dir(self) -> Path:
        return Path(self.flink.checkpoint_dir) if self.flink.checkpoint_dir else self.state_dir / "checkpoints"

    @property
    def offline_root(self) -> Path:
        return self._folder(self.offline.root, self.state_dir / "offline")

    @property
    def cluster_dir(self) -> Path:
        return self._folder(self.cluster.dir, self.state_dir / "cluster")

    @property
    def savepoint_dir(self) -> Path:
        return self._folder(self.cluster.savepoint_dir, self.state_dir / "savepoints")

    def ttl_ms(self, group: str) -> int:
        return parse_duration_ms(self.featurestore.ttl[group], f"featurestore.ttl.{group}")


# Environment overrides: variable -> (dotted path). Documented in docs/operations.md.
ENV_OVERRIDES = {
    "FYP_KAFKA_BOOTSTRAP": "kafka.bootstrap",
    "FYP_REDIS_URL": "redis.url",
    "FYP_STATE_DIR": "stack.state_dir",
    "FYP_ARTIFACTS_DIR": "stack.artifacts_dir",
    "FYP_BROKER_PORT": "stack.broker_port",
    "FYP_REDIS_PORT": "stack.redis_port",
    "FYP_BROKER_STORAGE": "stack.broker_storage",
    "FYP_PARALLELISM": "flink.parallelism",
    "FYP_CHECKPOINT_DIR": "flink.checkpoint_dir",
}


def load_config(path: str | Path | None = None, overrides: dict | None = None, env: dict | None = None) -> Config:
    """Loads a YAML file (default configs/local.yaml), applies env overrides and `overrides`
    (a dict of dotted paths), and validates every key and type."""
    path = Path(path) if path else DEFAULT_CONFIG
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    env = os.environ if env is None else env
    for var, dotted in ENV_OVERRIDES.items():
        if env.get(var):
            _set_dotted(raw, dotted, env[var])
    for dotted, value in (overrides or {}).items():
        _set_dotted(raw, dotted, value)
    cfg = _build(Config, raw, str(path), "")
    cfg.source = str(path)
    _check(cfg, str(path))
    return cfg


def _set_dotted(raw: dict, dotted: str, value: object) -> None:
    node = raw
    parts = dotted.split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    node[parts[-1]] = value


def _build(cls, data: object, source: str, prefix: str):
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: {prefix or 'top level'} must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.name != "source"}
    for key in data:
        if key not in names:
            raise ConfigError(f"{source}: unknown key '{prefix}{key}' (known: {', '.join(sorted(names))})")
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in data or f.name == "source":
            continue
        kwargs[f.name] = _coerce(hints[f.name], data[f.name], source, f"{prefix}{f.name}")
    return cls(**kwargs)


def _coerce(tp, value, source: str, where: str):
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, source, where + ".")
    if tp is Duration:
        try:
            return Duration(parse_duration_ms(value, where))
        except ConfigError as e:
            raise ConfigError(f"{source}: {e}") from None
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            return str(value)
    elif tp in (dict, list):
        if isinstance(value, tp):
            return value
    else:
        return value
    raise ConfigError(f"{source}: '{where}' must be {tp.__name__}, got {value!r}")


def _check_broker_tls(st: StackConfig, source: str) -> None:
    files = {"broker_tls_cert": st.broker_tls_cert, "broker_tls_key": st.broker_tls_key,
             "broker_tls_client_ca": st.broker_tls_client_ca}
    if not any(files.values()):
        return
    if not (st.broker_tls_cert and st.broker_tls_key):
        raise ConfigError(f"{source}: stack.broker_tls_cert and stack.broker_tls_key go together")
    for key, value in files.items():
        if value and (not Path(value).is_file() or re.search(r"[,:!]", value)):
            # socat, the TLS terminator, splits its address on these characters
            raise ConfigError(f"{source}: stack.{key}: expected an existing file whose path has no ',' ':' '!', "
                              f"got {value!r}")
    if st.broker_internal_port in (st.broker_port, st.redis_port) or not 0 < st.broker_internal_port < 65536:
        raise ConfigError(f"{source}: stack.broker_internal_port must be a port other than broker_port and redis_port")


def _check_kafka_security(sec: KafkaSecurityConfig, source: str) -> None:
    """Combinations that cannot work fail at load. The SASL password is checked where a client is
    built (settings/kafka_clients.py): a config without Kafka use must load without it."""
    where = "kafka.security"
    if sec.protocol not in KAFKA_PROTOCOLS:
        raise ConfigError(f"{source}: {where}.protocol must be one of {', '.join(KAFKA_PROTOCOLS)}, "
                          f"got {sec.protocol!r}")
    if sec.protocol.startswith("SASL_"):
        if sec.sasl_mechanism not in SASL_MECHANISMS:
            raise ConfigError(f"{source}: {where}.sasl_mechanism must be one of {', '.join(SASL_MECHANISMS)}, "
                              f"got {sec.sasl_mechanism!r}")
        if not sec.sasl_username:
            raise ConfigError(f"{source}: {where}.protocol {sec.protocol} needs {where}.sasl_username "
                              f"(its password comes from FYP_KAFKA_SASL_PASSWORD)")
    files = {"ssl_ca_file": sec.ssl_ca_file, "ssl_cert_file": sec.ssl_cert_file, "ssl_key_file": sec.ssl_key_file}
    if not sec.protocol.endswith("SSL"):
        for key, value in files.items():
            if value:  # would be ignored: say so rather than run without the TLS the file suggests
                raise ConfigError(f"{source}: {where}.{key} is set but {where}.protocol is {sec.protocol} "
                                  f"(TLS files need SSL or SASL_SSL)")
        return
    for key, value in files.items():
        if value and not Path(value).is_file():
            raise ConfigError(f"{source}: {where}.{key}: no such file: {value}")
    if sec.ssl_key_file and not sec.ssl_cert_file:
        raise ConfigError(f"{source}: {where}.ssl_key_file needs {where}.ssl_cert_file (the client certificate)")
    if sec.ssl_key_file and Path(sec.ssl_key_file).resolve() != Path(sec.ssl_cert_file).resolve():
        # Flink's Kafka client (PEM keystore) reads the certificate chain and key from one file
        raise ConfigError(f"{source}: {where}.ssl_key_file must be empty or the same file as "
                          f"{where}.ssl_cert_file: put the client certificate and its key in one PEM file")


def _check(cfg: Config, source: str) -> None:
    e = cfg.engagement
    if e.emit_interval <= 0 or e.tile % e.emit_interval:
        raise ConfigError(f"{source}: engagement.emit_interval must divide engagement.tile")
    if e.tile > 60_000:
        raise ConfigError(f"{source}: engagement.tile must be at most 1m (it bounds the window edge error)")
    for w in e.window_ms:
        if w % e.tile:
            raise ConfigError(f"{source}: window {format_duration(w)} is not a multiple of the tile")
    if e.allowed_lateness + e.tile >= max(e.window_ms):
        # a correction older than every window could not be counted anywhere
        raise ConfigError(f"{source}: engagement.allowed_lateness must be shorter than the longest window minus a tile")
    if cfg.flink.watermark_emit not in ("on-periodic", "on-event"):
        raise ConfigError(f"{source}: flink.watermark_emit must be on-periodic or on-event")
    if cfg.flink.python_worker_mode not in ("process", "loopback"):
        raise ConfigError(f"{source}: flink.python_worker_mode must be process or loopback")
    st = cfg.stack
    if st.broker_storage not in ("memory", "s3"):
        raise ConfigError(f"{source}: stack.broker_storage must be memory or s3, got {st.broker_storage!r}")
    internal = range(st.seaweedfs_internal_ports, st.seaweedfs_internal_ports + 7)
    if not (0 < st.seaweedfs_port < 65536 and 0 < internal.start and internal.stop <= 65536):
        raise ConfigError(f"{source}: stack.seaweedfs_port and stack.seaweedfs_internal_ports (+6) must be ports")
    _check_broker_tls(st, source)
    ports = [st.seaweedfs_port, *internal, st.broker_port, st.redis_port]
    if st.broker_storage == "s3" and len(set(ports)) != len(ports):
        raise ConfigError(f"{source}: stack.seaweedfs_port, the 7 ports from stack.seaweedfs_internal_ports, "
                          f"broker_port and redis_port must not overlap")
    if not re.match(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", st.s3_bucket):
        raise ConfigError(f"{source}: stack.s3_bucket must be an S3 bucket name (3-63 of a-z 0-9 . -), "
                          f"got {st.s3_bucket!r}")
    cl = cfg.cluster
    for key in ("jobmanager_memory", "taskmanager_memory"):
        if not re.match(r"^\d+\s*(m|mb|g|gb)$", getattr(cl, key).strip().lower()):
            raise ConfigError(f"{source}: cluster.{key} must be a size like 1g or 2560m, got {getattr(cl, key)!r}")
    if not (0 < cl.rest_port < 65536 and 0 < cl.rpc_port < 65536) or cl.rest_port == cl.rpc_port:
        raise ConfigError(f"{source}: cluster.rest_port and cluster.rpc_port must be distinct ports")
    if cl.slots < 0 or cl.startup_timeout <= 0:
        raise ConfigError(f"{source}: cluster.slots must not be negative (0 = flink.parallelism), "
                          f"cluster.startup_timeout must be positive")
    if cfg.kafka.starting_offsets not in ("earliest", "group"):
        raise ConfigError(f"{source}: kafka.starting_offsets must be earliest or group")
    _check_kafka_security(cfg.kafka.security, source)
    for group in ("video_engagement", "user_interests", "region_trends", "video_milestones", "video_spikes",
                  "spike_alerts"):
        if group not in cfg.featurestore.ttl:
            raise ConfigError(f"{source}: featurestore.ttl.{group} is required")
    if cfg.offline.flush_rows < 1 or cfg.offline.flush_interval < 1:
        raise ConfigError(f"{source}: offline.flush_rows and offline.flush_interval must be positive")
    if cfg.trends.top_k < 1 or not cfg.trends.windows:
        raise ConfigError(f"{source}: trends.top_k must be positive and trends.windows not empty")
    for w in cfg.trends.window_ms:
        if w <= 0 or w % 60_000:
            raise ConfigError(f"{source}: trends window {format_duration(w)} must be a whole number of minutes")
    m = cfg.milestones.thresholds
    if not m or any(not isinstance(x, int) or isinstance(x, bool) or x < 1 for x in m) or len(set(m)) != len(m):
        raise ConfigError(f"{source}: milestones.thresholds must be distinct positive integers")
    i = cfg.interests
    if i.top_n < 1 or i.min_events < 1 or i.decay <= 0 or i.emit_interval <= 0 or i.forget_after <= 0:
        raise ConfigError(f"{source}: interests.top_n, min_events, decay, emit_interval and forget_after must be positive")
    if i.prune_below < 0:
        raise ConfigError(f"{source}: interests.prune_below must not be negative")
    if i.newcomer_ttl > i.idle_ttl:
        raise ConfigError(f"{source}: interests.newcomer_ttl must not exceed interests.idle_ttl")
    sp = cfg.spikes
    if sp.interval <= 0 or sp.interval % 1000 or sp.history < 10 or sp.calm_intervals < 1:
        raise ConfigError(f"{source}: spikes.interval must be whole seconds, history >= 10, calm_intervals >= 1")
    if not 0 <= sp.rise_score <= 1:
        raise ConfigError(f"{source}: spikes.rise_score must be in [0, 1]")
    if sp.super_rate < sp.min_rate or not 1 <= sp.calm_growth <= sp.super_growth or sp.rise_growth < 1:
        raise ConfigError(f"{source}: spikes need super_rate >= min_rate and 1 <= calm_growth <= super_growth, rise_growth >= 1")
    from anomaly.detector import DetectorParams
    known = {f.name for f in dataclasses.fields(DetectorParams)}
    for key in sp.detector:
        if key not in known:
            raise ConfigError(f"{source}: unknown key 'spikes.detector.{key}' (known: {', '.join(sorted(known))})")
    if re.match(r"^rediss?://[^/@]*:[^/@]+@", cfg.redis.url):
        raise ConfigError(f"{source}: redis.url must not carry a password; set FYP_REDIS_WRITER_PASSWORD / "
                          f"FYP_REDIS_READER_PASSWORD with redis.writer_user / reader_user instead")
    sv = cfg.serving
    if sv.timeout <= 0 or sv.pool_size < 1 or sv.cache_ttl < 0 or sv.cache_max_entries < 0 or sv.breaker_failures < 1:
        raise ConfigError(f"{source}: serving.timeout and pool_size must be positive, cache_ttl and "
                          f"cache_max_entries not negative, breaker_failures at least 1")
    from featurestore.client import check_defaults
    from operators.feature_groups import groups_for
    try:
        check_defaults(groups_for(cfg), sv.defaults)
    except (KeyError, TypeError) as e:
        raise ConfigError(f"{source}: serving.defaults: {e.args[0]}") from None
    hooks = [_build(WebhookConfig, w, source, f"alerts.webhooks[{i}].") for i, w in enumerate(cfg.alerts.webhooks)]
    for w in hooks:
        if w.format not in ("plain", "slack", "alertmanager"):
            raise ConfigError(f"{source}: alerts.webhooks '{w.name or w.url}': format must be plain, slack or alertmanager")
        if not w.url.startswith(("http://", "https://")):
            raise ConfigError(f"{source}: alerts.webhooks '{w.name}': url must be http(s), got {w.url!r}")
