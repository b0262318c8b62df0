"""A small, strict JSON record schema and its validator.

The same `RecordSchema` renders a descriptor (`descriptor_json`) that the JVM parser
(`jobs/jvm/src/dev/fyp/udf/RecordSchema.java`) interprets with the same rules, in the same order,
with the same reason strings. Keep the two in step: the integration tests send malformed events
through the job and compare the dead-letter reasons with `validate` here.

Validation order (first failure wins):
  too_large, invalid_json, not_an_object, unknown_field:<name> (document order),
  then per field in schema order: missing_field, wrong_type, out_of_range, in_future,
  bad_format, not_allowed.
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
KINDS = ("string", "long", "boolean")


@dataclass(frozen=True)
class Field:
    name: str
    kind: str
    required: bool = True
    default: Any = None
    min: int | None = None
    max: int | None = None
    max_future_skew_ms: int | None = None
    pattern: str | None = None
    allowed: tuple[str, ...] | None = None
    doc: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"field {self.name}: kind must be one of {KINDS}, not {self.kind!r}")
        if not self.required and self.default is None:
            raise ValueError(f"field {self.name}: an optional field needs a default")


class Invalid(Exception):
    """A record failed validation; `reason` is the machine-readable cause."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class RecordSchema:
    name: str
    version: int
    fields: tuple[Field, ...]
    max_bytes: int = 4096
    _patterns: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def descriptor(self) -> dict:
        out = []
        for f in self.fields:
            d: dict[str, Any] = {"name": f.name, "kind": f.kind, "required": f.required}
            if not f.required:
                d["default"] = f.default
            for key in ("min", "max", "max_future_skew_ms", "pattern"):
                if getattr(f, key) is not None:
                    d[key] = getattr(f, key)
            if f.allowed is not None:
                d["allowed"] = list(f.allowed)
            out.append(d)
        return {"name": self.name, "version": self.version, "max_bytes": self.max_bytes, "fields": out}

    def descriptor_json(self) -> str:
        return json.dumps(self.descriptor(), separators=(",", ":"), sort_keys=True)

    def validate(self, payload: bytes, now_ms: int | None = None) -> dict:
        """Returns the typed record (defaults filled in) or raises Invalid."""
        if len(payload) > self.max_bytes:
            raise Invalid("too_large")
        try:
            # stdlib json, not orjson: it keeps integers beyond 64 bits as integers, as Jackson does
            doc = json.loads(payload, parse_constant=_reject_constant)
        except (ValueError, RecursionError):
            raise Invalid("invalid_json") from None
        if not isinstance(doc, dict):
            raise Invalid("not_an_object")
        known = self.field_names
        for key in doc:
            if key not in known:
                raise Invalid(f"unknown_field:{key}")
        now = int(time.time() * 1000) if now_ms is None else now_ms
        return {f.name: self._convert(f, doc.get(f.name, _MISSING), now) for f in self.fields}

    def reason(self, payload: bytes, now_ms: int | None = None) -> str | None:
        try:
            self.validate(payload, now_ms)
            return None
        except Invalid as e:
            return e.reason

    def _convert(self, f: Field, value: Any, now_ms: int) -> Any:
        if value is _MISSING:
            if f.required:
                raise Invalid(f"missing_field:{f.name}")
            return f.default
        if f.kind == "string":
            if type(value) is not str:
                raise Invalid(f"wrong_type:{f.name}")
            if f.pattern is not None and not self._pattern(f).fullmatch(value):
                raise Invalid(f"bad_format:{f.name}")
            if f.allowed is not None and value not in f.allowed:
                raise Invalid(f"not_allowed:{f.name}")
            return value
        if f.kind == "long":
            if type(value) is not int:  # bool is an int subclass: excluded on purpose
                raise Invalid(f"wrong_type:{f.name}")
            if not INT64_MIN <= value <= INT64_MAX:
                raise Invalid(f"out_of_range:{f.name}")
            if (f.min is not None and value < f.min) or (f.max is not None and value > f.max):
                raise Invalid(f"out_of_range:{f.name}")
            if f.max_future_skew_ms is not None and value > now_ms + f.max_future_skew_ms:
                raise Invalid(f"in_future:{f.name}")
            return value
        if type(value) is not bool:
            raise Invalid(f"wrong_type:{f.name}")
        return value

    def _pattern(self, f: Field) -> re.Pattern:
        p = self._patterns.get(f.name)
        if p is None:
            p = self._patterns[f.name] = re.compile(f.pattern)
        return p


def _reject_constant(name: str):
    raise ValueError(f"{name} is not JSON")


class _Missing:
    __slots__ = ()


_MISSING = _Missing()
