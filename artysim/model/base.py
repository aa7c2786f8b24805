"""Base for every scenario table: frozen, strict types (a boolean or a string is never a number), no
NaN/inf, unknown keys refused with a suggestion."""

from __future__ import annotations

import difflib

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic_core import PydanticCustomError


def shorten(text: str, limit: int = 80) -> str:
    """A key or value from a document as shown in a message: at most about ``limit`` characters."""
    return text if len(text) <= limit else f"{text[:limit - 24]} ... ({len(text)} characters)"


class Strict(BaseModel):
    """A scenario table. Unknown keys are refused naming the nearest known key.

    Types are strict: pydantic's lax mode read ``true`` as 1 (``horizon_days = true`` ran a one-day
    scenario) and ``"5"`` as 5. The one conversion kept is a float with an integral value for an
    integer key (``runs = 1e4``)."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, strict=True, allow_inf_nan=False, populate_by_name=False,
        validate_default=True,
    )

    @model_validator(mode="before")
    @classmethod
    def _unknown_keys(cls, data):
        if not isinstance(data, dict):
            return data
        fields = {f.alias or name: f for name, f in cls.model_fields.items()}
        known = list(fields)
        for key in data:
            if key not in known:
                near = difflib.get_close_matches(str(key)[:200], known, n=1, cutoff=0.5)
                hint = f"; did you mean '{near[0]}'?" if near else f"; known keys: {', '.join(known)}"
                # a key with a newline or control character is shown escaped: the message stays one line
                shown = str(key) if str(key).isprintable() else str(key).encode("unicode_escape").decode()
                raise PydanticCustomError(
                    "unknown_key", "unknown key '{key}'{hint}", {"key": shorten(shown), "hint": hint}
                )
        ints = [k for k, v in data.items() if isinstance(v, float) and fields[k].annotation in (int, "int")
                and v.is_integer() and abs(v) < 2**63]
        if ints:
            data = {**data, **{k: int(data[k]) for k in ints}}
        return data
