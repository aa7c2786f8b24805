"""Base for every scenario table: frozen, no NaN/inf, unknown keys refused with a suggestion."""

from __future__ import annotations

import difflib

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic_core import PydanticCustomError


class Strict(BaseModel):
    """A scenario table. Unknown keys are refused naming the nearest known key."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, allow_inf_nan=False, populate_by_name=False, validate_default=True
    )

    @model_validator(mode="before")
    @classmethod
    def _unknown_keys(cls, data):
        if not isinstance(data, dict):
            return data
        known = [f.alias or name for name, f in cls.model_fields.items()]
        for key in data:
            if key not in known:
                near = difflib.get_close_matches(str(key), known, n=1, cutoff=0.5)
                hint = f"; did you mean '{near[0]}'?" if near else f"; known keys: {', '.join(known)}"
                # a key with a newline or control character is shown escaped: the message stays one line
                shown = str(key) if str(key).isprintable() else str(key).encode("unicode_escape").decode()
                raise PydanticCustomError(
                    "unknown_key", "unknown key '{key}'{hint}", {"key": shown, "hint": hint}
                )
        return data
