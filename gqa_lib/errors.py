"""One exception type for every bad input, so callers (and the CLI) can catch it in one place."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class GQAError(ValueError):
    """Invalid input to gqa_lib. The message names the parameter and what is allowed."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """`" (did you mean 'x' or 'y'?)"` for close matches of `name` in `choices`, else ``""``."""
    close = difflib.get_close_matches(name.lower(), [c.lower() for c in choices], n=3, cutoff=0.5)
    by_lower = {c.lower(): c for c in choices}
    if not close:
        return ""
    return " (did you mean " + " or ".join(repr(by_lower[c]) for c in close) + "?)"


def check_choice(param: str, value: object, allowed: Iterable[object]) -> None:
    """Raise GQAError unless `value` is one of `allowed`."""
    allowed = list(allowed)
    if value not in allowed:
        hint = did_you_mean(value, [str(a) for a in allowed]) if isinstance(value, str) else ""
        raise GQAError(
            f"{param}={value!r} is not allowed; choose one of {', '.join(map(repr, allowed))}{hint}"
        )
