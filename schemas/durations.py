"""Durations as people write them in configuration and on the command line: '500ms', '2s', '1m',
'1h', '7d', or a bare integer of milliseconds. `Duration` is the typed-settings field (an int of
milliseconds once validated)."""
from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator

_DURATION = re.compile(r"^\s*(\d+)\s*(ms|s|m|min|h|d)\s*$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}


def parse_duration_ms(value: object, where: str | None = None) -> int:
    """Milliseconds of '500ms', '2s', '1h', '24h', '7d' or a bare integer; a ValueError (naming
    `where` when given) otherwise."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    m = None if isinstance(value, bool) else _DURATION.match(str(value))
    if not m:
        prefix = f"{where}: " if where else ""
        raise ValueError(f"{prefix}expected a duration like '2s' or '1h' (or milliseconds), got {value!r}")
    return int(m.group(1)) * _UNIT_MS[m.group(2)]


def format_duration(ms: int) -> str:
    for unit in ("d", "h", "m", "s"):
        if ms % _UNIT_MS[unit] == 0 and ms >= _UNIT_MS[unit]:
            return f"{ms // _UNIT_MS[unit]}{unit}"
    return f"{ms}ms"


Duration = Annotated[int, BeforeValidator(parse_duration_ms)]
