"""What an accelerator is, for the serving roofline: peak dense BF16 FLOP/s, memory bandwidth
and capacity, each with the document it was transcribed from.

:class:`Accelerator` is a frozen, self-validating dataclass (base units: FLOP/s, bytes/s,
bytes). The shipped table, data/hardware/accelerators.toml, holds vendor datasheet figures
(transcribed, not measured); :func:`get_accelerator` looks one up by name or alias, and
:func:`read_accelerators` reads a user's TOML file of the same layout. A price per hour is
never part of the table: it is a user input to the serving functions.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gqa_lib.arch.config import read_data_file
from gqa_lib.errors import GQAError, check_int, check_real, did_you_mean
from gqa_lib.io import DATA_DIR

HARDWARE_FILE = DATA_DIR / "hardware" / "accelerators.toml"
CALIBRATION_FILE = DATA_DIR / "hardware" / "calibration.toml"
_RATES = ("bf16_flops_per_s", "memory_bandwidth_bytes_per_s", "memory_capacity_bytes")
_TEXTS = ("name", "source", "url", "date", "note", "uncertain")


@dataclass(frozen=True)
class Accelerator:
    """One accelerator's peak rates. ``source`` names the document of the figures ("user" for
    figures given on the command line); ``uncertain`` says what deserves checking."""

    key: str
    name: str
    bf16_flops_per_s: float
    memory_bandwidth_bytes_per_s: float
    memory_capacity_bytes: float
    source: str = "user"
    url: str = ""
    date: str = ""
    aliases: tuple[str, ...] = ()
    note: str = ""
    uncertain: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not self.key:
            raise GQAError(f"accelerator key must be a non-empty string, got {self.key!r}")
        for f in _TEXTS:  # a TOML date or number where text belongs is refused, not printed
            v = getattr(self, f)
            if not isinstance(v, str) or (f == "name" and not v.strip()):
                hint = " (a TOML date: write it in quotes)" if f == "date" else ""
                raise GQAError(f"{self.key}: {f} must be {'a non-empty' if f == 'name' else 'a'} "
                               f"string{hint}, got {v!r:.60}")
        if isinstance(self.aliases, str) or not isinstance(self.aliases, (list, tuple)) or not all(
                isinstance(a, str) and a.strip() for a in self.aliases):
            raise GQAError(f"{self.key}: aliases must be a list of non-empty strings "
                           f"(aliases = [\"h100\"]), got {self.aliases!r:.60}")
        for f in _RATES:
            object.__setattr__(self, f, check_real(f"{self.key}: {f}", getattr(self, f),
                                                   lo=0.0, lo_open=True))
        if not 0 < self.ridge_flops_per_byte < math.inf:  # 1e308 FLOP/s over 1e-308 B/s
            raise GQAError(f"{self.key}: bf16_flops_per_s / memory_bandwidth_bytes_per_s "
                           f"({self.bf16_flops_per_s:g} / {self.memory_bandwidth_bytes_per_s:g}) "
                           "is not a finite ridge point; give real figures")
        object.__setattr__(self, "aliases", tuple(self.aliases))

    @property
    def ridge_flops_per_byte(self) -> float:
        """Arithmetic intensity (FLOPs per byte read) above which a kernel is compute-bound."""
        return self.bf16_flops_per_s / self.memory_bandwidth_bytes_per_s

    def replace(self, **changes: Any) -> Accelerator:
        """A copy with some figures changed (e.g. a user's measured bandwidth); the source
        then says so."""
        changes = {k: v for k, v in changes.items() if v is not None}
        if not changes:
            return self
        src = f"{self.source}; overridden by the user: {', '.join(sorted(changes))}"
        return dataclasses.replace(self, **changes, source=src)


def parse_accelerators(data: dict[str, Any], origin: str) -> dict[str, Accelerator]:
    """{key: Accelerator} from the TOML layout ``[accelerators.KEY] name = ... ``."""
    table = data.get("accelerators")
    if not isinstance(table, dict) or not table:
        raise GQAError(f"{origin}: expected an [accelerators.NAME] table")
    fields = {f.name for f in dataclasses.fields(Accelerator)} - {"key"}
    out = {}
    for key, row in table.items():
        if not isinstance(row, dict):
            raise GQAError(f"{origin}: [accelerators.{key}] must be a table")
        unknown = set(row) - fields
        if unknown:
            name = sorted(unknown)[0]
            raise GQAError(f"{origin}: [accelerators.{key}] has unknown field {name!r}"
                           f"{did_you_mean(name, fields)}")
        missing = [f for f in ("name", *_RATES) if f not in row]
        if missing:
            raise GQAError(f"{origin}: [accelerators.{key}] lacks {missing[0]!r}")
        try:
            out[key] = Accelerator(key=key, **row)
        except GQAError as e:
            raise GQAError(f"{origin}: {e}") from None
    return out


def read_accelerators(path: str | Path) -> dict[str, Accelerator]:
    """A user's accelerator file (.toml or .json) in the layout of the shipped table."""
    return parse_accelerators(read_data_file(path), str(path))


@functools.lru_cache(maxsize=1)
def accelerators() -> dict[str, Accelerator]:
    """The shipped table (data/hardware/accelerators.toml): datasheet figures, not measured."""
    return read_accelerators(HARDWARE_FILE)


def get_accelerator(name: str | Accelerator) -> Accelerator:
    """An accelerator by key or alias (case-insensitive), or a path to a TOML file holding
    exactly one; an :class:`Accelerator` passes through."""
    if isinstance(name, Accelerator):
        return name
    if not isinstance(name, str) or not name:
        raise GQAError(f"hardware must be an accelerator name or a .toml path, got {name!r}")
    if name.lower().endswith((".toml", ".json")):
        found = read_accelerators(name)
        if len(found) != 1:
            raise GQAError(f"hardware file {name!r} holds {len(found)} accelerators; "
                           "name one of them with --hardware KEY --hardware-file PATH")
        return next(iter(found.values()))
    return lookup(name, accelerators())


def lookup(name: str, table: dict[str, Accelerator]) -> Accelerator:
    """``name`` (key or alias, case-insensitive) in ``table``; GQAError naming the choices."""
    by_name = {}
    for key, acc in table.items():
        for n in (key, *acc.aliases):
            by_name[n.lower()] = acc
    if name.lower() in by_name:
        return by_name[name.lower()]
    raise GQAError(f"hardware={name!r} is not a known accelerator; choose one of "
                   f"{', '.join(map(repr, table))}{did_you_mean(name, list(by_name))}, or "
                   "give its figures (--flops-per-s, --bandwidth, --memory-gb) or a .toml file")


@dataclass(frozen=True)
class Calibration:
    """Achieved rates of one accelerator, fitted on its measured step times
    (:mod:`gqa_lib.cost.calibrate`): a floor per layer and step (s), memory bandwidth
    (bytes/s), matmul and attention FLOP/s, the factor by which a training step's compute
    is slower than its forward work at those rates (backward kernels), and the memory the
    device exposes (bytes, as measured; None: the datasheet's). ``source`` names the measurement file, ``points``
    how many step times were fitted, ``loo_max_error`` the largest leave-one-out error of step
    time per regime ((regime, fraction), ...)."""

    accelerator: str
    layer_floor_s: float
    bandwidth_bytes_per_s: float
    matmul_flops_per_s: float
    attention_flops_per_s: float
    train_compute_factor: float = 1.0
    memory_capacity_bytes: float | None = None
    source: str = ""
    points: int = 0
    loo_max_error: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        for f in ("layer_floor_s", "bandwidth_bytes_per_s", "matmul_flops_per_s",
                  "attention_flops_per_s", "train_compute_factor", "memory_capacity_bytes"):
            v = getattr(self, f)
            if v is None and f == "memory_capacity_bytes":
                continue
            object.__setattr__(self, f, check_real(f"calibration {self.accelerator}: {f}", v,
                                                   lo=0.0, lo_open=True))


# Bounds of a plausible calibration (check_calibration): a fitted rate is an achieved rate,
# so at most RATE_HI x the datasheet peak (and above RATE_LO x it: slower is a broken fit or
# a typo); the per-layer floor is kernel latency, well under FLOOR_HI_S; the training
# compute factor within TRAIN_FACTOR; the exposed memory within MEMORY of the datasheet's.
RATE_LO, RATE_HI = 1e-3, 2.0
FLOOR_HI_S = 1.0
TRAIN_FACTOR = (0.1, 10.0)
MEMORY = (0.1, 2.0)
_CAL_REQUIRED = ("layer_floor_s", "bandwidth_bytes_per_s", "matmul_flops_per_s",
                 "attention_flops_per_s", "train_compute_factor", "memory_capacity_bytes",
                 "source", "points", "loo_max_error")


def check_calibration(c: Calibration, where: str) -> Calibration:
    """``c`` if its constants are plausible for its accelerator's datasheet (the bounds
    above), else GQAError naming ``where`` and the constant: an absurd constant would
    otherwise be printed as "calibrated"."""
    hw = accelerators().get(c.accelerator)
    if hw is None:
        raise GQAError(f"{where}: {c.accelerator!r} is not a known accelerator; known: "
                       f"{', '.join(accelerators())}{did_you_mean(c.accelerator, accelerators())}")
    peaks = {"bandwidth_bytes_per_s": hw.memory_bandwidth_bytes_per_s,
             "matmul_flops_per_s": hw.bf16_flops_per_s,
             "attention_flops_per_s": hw.bf16_flops_per_s}
    for f, peak in peaks.items():
        check_real(f"{where}: {f} (between {RATE_LO:g} and {RATE_HI:g} x the datasheet's "
                   f"{peak:.4g})", getattr(c, f), lo=RATE_LO * peak, hi=RATE_HI * peak)
    check_real(f"{where}: layer_floor_s (seconds per layer and step)", c.layer_floor_s,
               lo=0.0, lo_open=True, hi=FLOOR_HI_S, hi_open=True)
    check_real(f"{where}: train_compute_factor", c.train_compute_factor,
               lo=TRAIN_FACTOR[0], hi=TRAIN_FACTOR[1])
    if c.memory_capacity_bytes is not None:
        cap = hw.memory_capacity_bytes
        check_real(f"{where}: memory_capacity_bytes (between {MEMORY[0]:g} and {MEMORY[1]:g} x "
                   f"the datasheet's {cap:.4g})", c.memory_capacity_bytes,
                   lo=MEMORY[0] * cap, hi=MEMORY[1] * cap)
    return c


def _calibration_row(key: str, row: object) -> Calibration:
    """One [calibration.KEY] table of the calibration file, checked key by key."""
    where = f"{CALIBRATION_FILE}: [calibration.{key}]"
    if not isinstance(row, dict):
        raise GQAError(f"{where} must be a table, got {row!r:.60}")
    for k in row:
        if k not in _CAL_REQUIRED:
            raise GQAError(f"{where}: unknown key {k!r}{did_you_mean(k, _CAL_REQUIRED)}; "
                           f"keys: {', '.join(_CAL_REQUIRED)}")
    missing = [k for k in _CAL_REQUIRED if k not in row]
    if missing:
        raise GQAError(f"{where}: missing {', '.join(missing)} (rewrite the file with "
                       "python -m gqa_lib.cost.calibrate)")
    if not isinstance(row["source"], str):
        raise GQAError(f"{where}: source must be a string, got {row['source']!r:.60}")
    points = check_int(f"{where}: points (how many step times were fitted)", row["points"])
    loo = row["loo_max_error"]
    if not isinstance(loo, dict):
        raise GQAError(f"{where}: loo_max_error must be a table of regime = fraction, "
                       f"got {loo!r:.60}")
    errors = tuple((r, check_real(f"{where}: loo_max_error.{r}", e, lo=0.0))
                   for r, e in loo.items())
    try:
        c = Calibration(key, **{**row, "points": points, "loo_max_error": errors})
    except GQAError as e:
        raise GQAError(f"{where}: {e}") from None
    return check_calibration(c, where)


@functools.lru_cache(maxsize=1)
def calibrations() -> dict[str, Calibration]:
    """The shipped calibrations (data/hardware/calibration.toml), by accelerator key; a
    damaged file (a missing, unknown or implausible key, an unknown accelerator) is refused
    in one line naming the file and the key."""
    if not CALIBRATION_FILE.is_file():
        return {}
    table = read_data_file(CALIBRATION_FILE).get("calibration", {})
    if not isinstance(table, dict):
        raise GQAError(f"{CALIBRATION_FILE}: calibration must be a table of "
                       "[calibration.KEY] tables")
    return {k: _calibration_row(k, row) for k, row in table.items()}


def calibration(hardware: str | Accelerator) -> Calibration | None:
    """The measured calibration of an accelerator, or None where it has not been measured
    (the serving model then uses datasheet peaks times assumed efficiencies). A user's
    accelerator (figures given by hand, or overridden) never takes a shipped calibration."""
    acc = get_accelerator(hardware)
    found = calibrations().get(acc.key)
    if found is None or acc != accelerators().get(acc.key):
        return None
    return found
