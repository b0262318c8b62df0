"""`fyp acl apply | show`: the Redis ACL users of the feature store (featurestore/acl.py).

    fyp acl apply     creates or resets redis.writer_user and redis.reader_user with their
                      passwords from FYP_REDIS_WRITER_PASSWORD / FYP_REDIS_READER_PASSWORD,
                      connecting as an admin: FYP_REDIS_ADMIN_USER (default "default") with
                      FYP_REDIS_ADMIN_PASSWORD (none if unset)
    fyp acl show      the rules that apply would set (no passwords)
"""
from __future__ import annotations

import os

import redis


def _users(cfg):
    return {role: user for role, user in (("writer", cfg.redis.writer_user), ("reader", cfg.redis.reader_user)) if user}


def cmd_acl_apply(cfg, args) -> None:
    from featurestore import acl
    from settings.connections import PASSWORD_ENV, tls_options

    users = _users(cfg)
    if not users:
        raise SystemExit("no ACL users configured: set redis.writer_user and/or redis.reader_user")
    creds = {}
    for role, user in users.items():
        password = os.environ.get(PASSWORD_ENV[role])
        if not password:
            raise SystemExit(f"{PASSWORD_ENV[role]} is not set (the password of {role} user {user!r})")
        creds[role] = (user, password)
    admin = redis.Redis.from_url(cfg.redis.url, username=os.environ.get("FYP_REDIS_ADMIN_USER") or None,
                                 password=os.environ.get("FYP_REDIS_ADMIN_PASSWORD") or None, **tls_options(cfg))
    try:
        names = acl.apply(admin, creds)
    except redis.AuthenticationError as e:
        raise SystemExit(f"Redis refused the admin login ({e}); check FYP_REDIS_ADMIN_USER / FYP_REDIS_ADMIN_PASSWORD") from None
    print(f"applied ACL users: {', '.join(names)}")


def cmd_acl_show(cfg, args) -> None:
    from featurestore import acl

    for role, user in _users(cfg).items():
        rules = acl.setuser_args(role, "x")
        rules = ["#<sha256 of " + f"{role} password>" if r.startswith("#") else r for r in rules]
        print(f"ACL SETUSER {user} {' '.join(rules)}")


def add_commands(sub, load_cfg) -> None:
    a = sub.add_parser("acl", help="Redis ACL users of the feature store (writer may write, readers only read)")
    asub = a.add_subparsers(dest="action", required=True)
    asub.add_parser("apply", help="create or reset the users (passwords from the environment)").set_defaults(
        fn=lambda args: cmd_acl_apply(load_cfg(args), args))
    asub.add_parser("show", help="print the rules apply would set").set_defaults(
        fn=lambda args: cmd_acl_show(load_cfg(args), args))
