"""The configuration: YAML validated into typed models (pydantic v2; the sections are in
settings/infrastructure.py and settings/families.py).

Every key is checked: an unknown or mistyped key fails at load with the key's path and the file.
Connection settings can be overridden from the environment (FYP_KAFKA_BOOTSTRAP, FYP_REDIS_URL,
...); secrets are only ever read from the environment.
"""
from __future__ import annotations

import dataclasses
import os
import typing
from pathlib import Path

import yaml
from pydantic import Field, ValidationError, model_validator

from settings.families import (AlertsConfig, EngagementConfig, EnrichmentConfig, InterestsConfig, MilestonesConfig,
                               SpikesConfig, TrendsConfig)
from settings.infrastructure import (ClusterConfig, FeatureStoreConfig, FlinkConfig, KafkaConfig, ObservabilityConfig,
                                     OfflineConfig, RedisConfig, ServingConfig, StackConfig)
from settings.section import Section

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = REPO_ROOT / "configs" / "local.yaml"

__all__ = ["Config", "ConfigError", "DEFAULT_CONFIG", "ENV_OVERRIDES", "REPO_ROOT", "load_config"]


class ConfigError(ValueError):
    pass


def _in_repo(path: str) -> Path:
    p = Path(path)
    return p if p.is_absolute() else REPO_ROOT / p


class Config(Section):
    kafka: KafkaConfig = KafkaConfig()
    redis: RedisConfig = RedisConfig()
    stack: StackConfig = StackConfig()
    flink: FlinkConfig = FlinkConfig()
    cluster: ClusterConfig = ClusterConfig()
    engagement: EngagementConfig = EngagementConfig()
    enrichment: EnrichmentConfig = EnrichmentConfig()
    interests: InterestsConfig = InterestsConfig()
    trends: TrendsConfig = TrendsConfig()
    milestones: MilestonesConfig = MilestonesConfig()
    spikes: SpikesConfig = SpikesConfig()
    alerts: AlertsConfig = AlertsConfig()
    featurestore: FeatureStoreConfig = FeatureStoreConfig()
    offline: OfflineConfig = OfflineConfig()
    serving: ServingConfig = ServingConfig()
    observability: ObservabilityConfig = ObservabilityConfig()
    source: str = Field("<defaults>", exclude=True)  # the file it was loaded from

    @model_validator(mode="after")
    def _serving_defaults_name_features(self):
        from featurestore.client import check_defaults
        from operators.feature_groups import groups_for
        try:
            check_defaults(groups_for(self), self.serving.defaults)
        except (KeyError, TypeError) as e:
            raise ValueError(f"serving.defaults: {e.args[0]}") from None
        return self

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
        return self.featurestore.ttl[group]


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
    raw.pop("source", None)
    try:
        cfg = Config.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(f"{path}: " + "; ".join(_describe(err) for err in e.errors())) from None
    return cfg.model_copy(update={"source": str(path)})


def _set_dotted(raw: dict, dotted: str, value: object) -> None:
    node = raw
    parts = dotted.split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    node[parts[-1]] = value


def _describe(err: dict) -> str:
    """One validation error as a person reads it: the key's dotted path first."""
    where = ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in err["loc"]).replace(".[", "[")
    if err["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
        known = _known_keys(err["loc"][:-1])
        return f"unknown key '{where}'" + (f" (known: {', '.join(known)})" if known else "")
    if err["type"] == "value_error":  # our own checks: their message names the keys
        msg = err["msg"].removeprefix("Value error, ")
        return msg if not where or where.split(".")[-1] in msg else f"'{where}': {msg}"
    msg = err["msg"]
    return f"'{where}': {msg[:1].lower()}{msg[1:]}, got {err['input']!r}"


def _known_keys(loc: tuple) -> list[str]:
    """The keys the section at `loc` accepts (a section is a model or, for a few weights, a
    dataclass of the feature logic)."""
    model = Config
    for part in loc:
        if isinstance(part, int):
            continue
        annotation = model.model_fields[part].annotation if hasattr(model, "model_fields") else None
        args = typing.get_args(annotation)
        model = args[0] if args else annotation
    if hasattr(model, "model_fields"):
        return sorted(model.model_fields)
    return sorted(f.name for f in dataclasses.fields(model)) if dataclasses.is_dataclass(model) else []
