"""Parsing and formatting of sizes: `128k` -> 131072 tokens, 1.41e9 -> "1.41 B", bytes -> "GiB".

Cost functions return base units; these helpers are the only place numbers become text.
"""

from __future__ import annotations

import math
import numbers
import re
from fractions import Fraction
from typing import Any

from gqa_lib.errors import MAX_EXACT, GQAError

_CONTEXT_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*$")


def parse_context(text: str | int) -> int:
    """Parse a context length: ``131072``, ``128k``, ``128K`` (x1024), ``1M`` (x1024^2).

    Exact (decimal arithmetic, so ``1.5k`` is 1536 and 2**53 + 1 is not rounded); contexts
    above 2**53 tokens (:data:`gqa_lib.errors.MAX_EXACT`) are refused, not rounded.
    """
    if isinstance(text, bool) or text is None:
        raise GQAError(f"context must be a positive number of tokens, got {text!r}")
    if isinstance(text, numbers.Integral):
        value = int(text)
    else:
        m = _CONTEXT_RE.match(str(text)) if len(str(text)) <= 64 else None
        if not m:
            raise GQAError(
                f"context {text!r} is not a token count; use e.g. 8192, 8k, 128K or 1M"
            )
        scale = {"": 1, "k": 1024, "m": 1024**2}[m.group(2).lower()]
        number = Fraction(m.group(1)) * scale
        if number.denominator != 1:
            raise GQAError(f"context {text!r} is not a whole number of tokens")
        value = int(number)
    if value <= 0:
        raise GQAError(f"context must be > 0 tokens, got {text!r}")
    if value > MAX_EXACT:
        raise GQAError(f"context {text!r} is above 2**53 = {MAX_EXACT:,} tokens, the largest "
                       "the cost model counts exactly")
    return value


def format_context(tokens: int) -> str:
    """131072 -> '128K', 1000 -> '1000'."""
    tokens = int(tokens)
    for unit, scale in (("M", 1024**2), ("K", 1024)):
        if tokens >= scale and tokens % scale == 0:
            return f"{tokens // scale}{unit}"
    return str(tokens)


def format_tokens(tokens: float, digits: int = 3) -> str:
    """A context length in the book's units (K = 1,024 tokens, M = 1,024 K), also where it is
    not a whole number of them: 131072 -> '128K', 1_480_000 -> '1.41M', 921_600 -> '900K';
    below 1,024 the count itself."""
    return _prefixed(tokens, (("M", 1024**2), ("K", 1024)), digits, "", sep="")


HEADS_TITLE = "H = (n_h, n_kv)"  # a column or axis of head configurations, in words


def format_heads(n_head: int, n_kv_head: int) -> str:
    """A head configuration H = (n_head, n_kv_head), one form everywhere (tables, prose,
    charts, the CLI): (8, 1) -> '(8, 1)'."""
    return f"({int(n_head)}, {int(n_kv_head)})"


def format_heads_each(n_head: Any, n_kv_head: Any) -> list[str]:
    """:func:`format_heads` for each pair of two equal-length columns (a table's n_head and
    n_kv_head)."""
    return [format_heads(h, k) for h, k in zip(n_head, n_kv_head)]


def format_list(items: Any) -> str:
    """Items in words: [] -> 'none', ['a'] -> 'a', ['a', 'b', 'c'] -> 'a, b and c'."""
    items = [str(i) for i in items]
    if len(items) < 2:
        return items[0] if items else "none"
    return ", ".join(items[:-1]) + " and " + items[-1]


def format_signed(x: float, digits: int = 3) -> str:
    """A change with its sign, never a negative zero: -0.0042 -> '-0.004', 0.0004 and
    -0.0004 -> '+0.000' (a change too small to print is not a loss)."""
    return f"{round(float(x), digits) + 0.0:+.{digits}f}"  # -0.0 + 0.0 is +0.0


# The prefixes of each kind of number, largest first, with the suffix after a prefix and the
# text after a number too small for any; :func:`gqa_lib.book.figures.number_expr` writes the
# same rule as a Vega expression for chart axes and tooltips.
COUNT_UNITS = (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3))
FLOP_UNITS = (("E", 1e18), ("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3))
PREFIXED = {"count": (COUNT_UNITS, "", ""), "flops": (FLOP_UNITS, "FLOP", " FLOP")}


def format_count(n: float, digits: int = 3) -> str:
    """1_235_814_400 -> '1.24 B' (decimal prefixes K, M, B, T), keeping `digits` significant."""
    return _prefixed(n, COUNT_UNITS, digits, "")


def format_z(z: float) -> str:
    """The recipe's cost Z (eq. 5, no unit), one form everywhere (tables, prose, the CLI):
    56604.8 -> '56,605', 153462.6 -> '153,463'; below 1,000 four significant digits; from
    1e12 (other exponents than the paper's) four significant digits, 3.813e+74."""
    z = float(z)
    return f"{z:,.0f}" if 1000 <= abs(z) < 1e12 else f"{z:.4g}"


def format_p(p: float, alpha: float | None = None) -> str:
    """A p-value as a phrase, one form everywhere: two decimals from 0.01 (0.0912 ->
    'p = 0.09'), three below (0.0069 -> 'p = 0.007'), and 'p < 0.001' below that (a t-test
    on a handful of seeds says no more); 'p undefined' for NaN (a single pair). Given the
    threshold ``alpha`` it is judged against, a p within a factor of two of it keeps the
    significant digits that put it on its true side (0.0241 against 0.025 -> 'p = 0.024',
    not 'p = 0.02')."""
    p = float(p)
    if not math.isfinite(p):
        return "p undefined"
    if alpha is not None and alpha / 2 <= p <= 2 * alpha and p >= 0.001:
        for sig in range(2, 8):
            shown = float(f"{p:.{sig}g}")
            if (shown < alpha) == (p < alpha) and (shown == alpha) == (p == alpha):
                break
        return f"p = {p:.{sig}g}"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}" if p < 0.01 else f"p = {p:.2f}"


def format_saving(saving_pct: float, noun: str) -> str:
    """A saving as words, its sign as a word: (12.3, 'memory') -> '12.3% less memory',
    (-4.0, 'memory') -> '4.0% more memory'; 'fewer FLOPs' (a count), 'lower Z', 'lower
    latency', 'lower cost' (a level)."""
    level = ("lower", "higher")
    less, more = {"FLOPs": ("fewer", "more"), "Z": level, "latency": level,
                  "cost": level}.get(noun, ("less", "more"))
    return f"{abs(saving_pct):.1f}% {less if saving_pct >= 0 else more} {noun}"


def format_flops(n: float, digits: int = 3) -> str:
    """4.2e12 -> '4.2 TFLOP' (decimal prefixes)."""
    return _prefixed(n, FLOP_UNITS, digits, "FLOP", bare=" FLOP")


def format_bytes(n: float, digits: int = 3) -> str:
    """4294967296 -> '4 GiB' (binary prefixes)."""
    return _prefixed(n, (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)),
                     digits, "", bare=" B")


def format_rate(per_s: float) -> str:
    """A rate (tokens/s) in the CLI's tables: 92,145.4 -> '92,145'; below 100 three
    significant digits, so that a tiny run's 0.103 is not printed as '0'."""
    return f"{per_s:,.0f}" if per_s >= 100 else f"{per_s:.3g}"


def _prefixed(n: float, scales: tuple[tuple[str, float], ...], digits: int, suffix: str,
              bare: str = "", sep: str = " ") -> str:
    """`n` in the largest unit in which it shows as >= 1 once rounded to `digits`
    significant digits (999,616 -> '1 M', not '1000 K'); below the smallest, bare."""
    n = float(n)
    for unit, scale in scales:
        if math.isfinite(n) and abs(float(_sig(n / scale, digits))) >= 1:
            return f"{_sig(n / scale, digits)}{sep}{unit}{suffix}"
    return f"{_sig(n, digits)}{bare}"


def format_bound(bound: float, value: float, digits: int = 4) -> str:
    """`bound` with the fewest decimals (at least `digits`) that keep `value` on
    the same side of it, so that a message saying "value is at or below bound" (or above
    it) stays true as printed: E = 2.05997 for a target of 2.06, not E = 2.0600."""
    for d in range(digits, 18):
        text = f"{bound:.{d}f}"
        if (value <= float(text)) == (value <= bound):
            return text
    return repr(float(bound))


def _sig(x: float, digits: int) -> str:
    if x == 0:
        return "0"
    if not math.isfinite(x):
        return str(x)
    decimals = max(0, digits - 1 - int(math.floor(math.log10(abs(x)))))
    s = f"{x:.{decimals}f}"
    return s.rstrip("0").rstrip(".") if "." in s else s
