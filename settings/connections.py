"""Redis connections by role, with the role's ACL user, its password from the environment, and
TLS when the URL is rediss://. WHY one place: every service connects the same way, and a wrong
password fails at start with one clear message instead of deep inside a write.

Roles (featurestore/acl.py): "writer" (feature writer, notifier, alerter) and "reader" (the read
client, `fyp serve`, `fyp features get`). Passwords: FYP_REDIS_WRITER_PASSWORD,
FYP_REDIS_READER_PASSWORD; never in config files, never printed.
"""
from __future__ import annotations

import os

import redis

from settings.config import Config

PASSWORD_ENV = {"writer": "FYP_REDIS_WRITER_PASSWORD", "reader": "FYP_REDIS_READER_PASSWORD"}


class RedisAccessError(RuntimeError):
    pass


def redis_options(cfg: Config, role: str, environ=None) -> dict:
    """Keyword arguments for redis.Redis / connection pools: user, password, TLS."""
    environ = os.environ if environ is None else environ
    user = {"writer": cfg.redis.writer_user, "reader": cfg.redis.reader_user}[role]
    opts: dict = {}
    if user:
        password = environ.get(PASSWORD_ENV[role])
        if not password:
            raise RedisAccessError(f"redis.{role}_user is {user!r} but {PASSWORD_ENV[role]} is not set "
                                   f"(its password; secrets come only from the environment)")
        opts.update(username=user, password=password)
    opts.update(tls_options(cfg))
    return opts


def tls_options(cfg: Config) -> dict:
    if not cfg.redis.url.startswith("rediss://"):
        return {}
    t = cfg.redis.tls
    return {"ssl_ca_certs": t.ca_file or None, "ssl_certfile": t.cert_file or None,
            "ssl_keyfile": t.key_file or None, "ssl_check_hostname": t.check_hostname}


def redis_client(cfg: Config, role: str = "writer", environ=None, check: bool = True) -> redis.Redis:
    """A client as `role`; with `check`, a refused login raises RedisAccessError now."""
    t = cfg.redis.socket_timeout / 1000
    client = redis.Redis.from_url(cfg.redis.url, socket_timeout=t, socket_connect_timeout=t,
                                  **redis_options(cfg, role, environ))
    if check:
        check_access(client, role, cfg)
    return client


def serving_redis_client(cfg: Config, environ=None) -> redis.Redis:
    """The read path's pool: the serving timeout (milliseconds, not the writer's seconds), bounded,
    shared by the threads of one process."""
    sv = cfg.serving
    t = sv.timeout / 1000
    pool = redis.BlockingConnectionPool.from_url(cfg.redis.url, max_connections=sv.pool_size, timeout=t,
                                                 socket_timeout=t, socket_connect_timeout=t,
                                                 **redis_options(cfg, "reader", environ))
    return redis.Redis(connection_pool=pool)


def check_access(client: redis.Redis, role: str, cfg: Config) -> None:
    """PING as the role's user: a refused login becomes one clear error naming the user and the
    variable to fix (never the password). Unreachable Redis is not an error here: the services
    retry that."""
    user = {"writer": cfg.redis.writer_user, "reader": cfg.redis.reader_user}[role] or "default"
    try:
        client.ping()
    except redis.AuthenticationError as e:
        raise RedisAccessError(f"Redis refused the {role} login as user {user!r} ({e}); check "
                               f"{PASSWORD_ENV[role]} and redis.{role}_user") from None
    except redis.exceptions.NoPermissionError as e:
        raise RedisAccessError(f"Redis user {user!r} may not run PING ({e}); apply the ACLs with "
                               f"`fyp acl apply`") from None
    except (redis.ConnectionError, redis.TimeoutError):
        pass


def feature_client(cfg: Config, **kw):
    """The read client (featurestore/client.py) as configured: the serving pool, its reader login
    checked now (a refused login fails here, not on every read), the serving settings."""
    from featurestore.client import FeatureClient
    from operators.feature_groups import groups_for

    client = serving_redis_client(cfg)
    check_access(client, "reader", cfg)
    return FeatureClient(client, groups_for(cfg), cfg.serving, **kw)
