"""Redis ACL users of the feature store: the writer may write only the store's keys, readers may
only read them. WHY: a ranking service with a bug (or an attacker on its host) must not be able to
change what every other request is ranked on.

Roles and what they may do (keys: the feature layout's, `fyp:v2:*`, and the services' records,
`fyp:v1:*`; featurestore/SPEC.md):
- writer (feature writer, milestone notifier, spike alerter): read and write the store's keys
  with the commands those services send (versioned-write and claim scripts, hashes, expiry);
  nothing else: no FLUSHALL, CONFIG, KEYS, DEBUG, no keys outside the prefix.
- reader (featurestore/client.py, `fyp serve`, `fyp features get`): GET/MGET on the feature
  keys, read-only (`%R~`), plus PING.
Passwords never appear in config files or in commands sent to Redis: `fyp acl apply` reads them
from the environment and sends their SHA-256 (`#<hex>`), so they are not in MONITOR output or the
slow log either.
"""
from __future__ import annotations

import hashlib

from featurestore import layout

# connection housekeeping every client sends (redis-py: HELLO/AUTH, SELECT of the URL's db; its CLIENT
# SETINFO, absent before Redis 7.2, may fail and redis-py ignores that), and what a cluster client
# asks to learn the slot map
HOUSEKEEPING = ["+ping", "+hello", "+auth", "+select", "+cluster|slots", "+cluster|shards",
                "+cluster|info", "+cluster|nodes", "+readonly"]
WRITER_COMMANDS = ["+evalsha", "+eval", "+script|load", "+script|exists", "+get", "+set", "+hset",
                   "+hsetnx", "+hget", "+hmget", "+hgetall", "+hdel", "+hlen", "+del", "+pexpire"]
READER_COMMANDS = ["+get", "+mget"]
ROLES = ("writer", "reader")


def setuser_args(role: str, password: str) -> list[str]:
    """Arguments of ACL SETUSER <name> ... for a role: reset, then allow exactly its commands."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    if not password:
        raise ValueError(f"the {role} password is empty")
    digest = hashlib.sha256(password.encode()).hexdigest()
    keys = [f"~{layout.PREFIX}:*", f"~{layout.RECORDS_PREFIX}:*"] if role == "writer" else [f"%R~{layout.PREFIX}:*"]
    commands = WRITER_COMMANDS if role == "writer" else READER_COMMANDS
    return ["reset", "on", f"#{digest}", *keys, "resetchannels", "-@all", *HOUSEKEEPING, *commands]


def apply(admin, users: dict[str, tuple[str, str]]) -> list[str]:
    """Creates or resets each role's user: {role: (username, password)}. Returns the usernames."""
    done = []
    for role, (name, password) in users.items():
        admin.execute_command("ACL", "SETUSER", name, *setuser_args(role, password))
        done.append(name)
    return done
