"""One exception type for every bad input, so callers (and the CLI) can catch it in one place."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any


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


# ----- the checks every external input goes through -----------------------------------------
# The largest integer float64 holds exactly: every count the cost model returns (parameters,
# cache values, tokens) stays at or below it, or is refused; FLOPs are float64 above it.
MAX_EXACT = 2**53


def check_int(param: str, value: object, *, lo: int = 1, hi: int = MAX_EXACT) -> int:
    """`value` as an int in [lo, hi]: an integer, or a float with an integral value (1e3, not
    1.5); never a bool or a string. GQAError naming `param` and the range otherwise."""
    import math
    import numbers

    what = f"an integer in [{lo}, {'2**53' if hi == MAX_EXACT else hi}]"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise GQAError(f"{param} must be {what}, got {value!r}")
    if not isinstance(value, numbers.Integral):
        if not math.isfinite(value) or value != int(value):
            raise GQAError(f"{param} must be {what}, got {value!r}")
        if abs(value) > MAX_EXACT:  # a float this large is no longer an exact integer
            raise GQAError(f"{param} must be {what}, got {value!r}")
    v = int(value)
    if not lo <= v <= hi:
        raise GQAError(f"{param} must be {what}, got {value!r}")
    return v


def check_real(param: str, value: object, *, lo: float | None = None, hi: float | None = None,
               lo_open: bool = False, hi_open: bool = False) -> float:
    """`value` as a finite float in the given range; never a bool, a string, None or NaN."""
    import math
    import numbers

    lo_s = "" if lo is None else f"{'>' if lo_open else '>='} {lo:g}"
    hi_s = "" if hi is None else f"{'<' if hi_open else '<='} {hi:g}"
    what = "a finite number" + (f" {lo_s}" if lo_s else "") + (
        f"{' and' if lo_s else ''} {hi_s}" if hi_s else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise GQAError(f"{param} must be {what}, got {value!r}")
    v = float(value)
    if (not math.isfinite(v) or (lo is not None and (v <= lo if lo_open else v < lo))
            or (hi is not None and (v >= hi if hi_open else v > hi))):
        raise GQAError(f"{param} must be {what}, got {value!r}")
    return v


def check_numbers(param: str, value: object, what: str = "a number") -> Any:
    """`value` (a number or an array of them) as a float64 array; never a bool, a string,
    None or an object array (GQAError naming `param`, saying it wants `what`)."""
    import numbers

    import numpy as np

    if isinstance(value, numbers.Integral) and not isinstance(value, bool) \
            and abs(int(value)) >= 2**63:  # a Python int past int64: a number all the same
        value = float(value)
    a = np.asarray(value) if not isinstance(value, (str, bytes)) else np.asarray(None)
    if a.dtype.kind not in "iuf" or a.size == 0:
        raise GQAError(f"{param} must be {what} or an array of them, got {value!r}")
    return a.astype(np.float64)
