"""The base of every config section: typed (pydantic v2), unknown keys refused, numbers accepted
where text is expected (a YAML `s3_bucket: 123`), booleans only as booleans."""
from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Strict


Flag = Annotated[bool, Strict()]  # 'yes' or 1 is refused: a typo must not switch a check off


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True, validate_default=True)
