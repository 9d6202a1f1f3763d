"""Longer training at equal size (data/sweeps/cpu-eq-long-v1): does context use appear?

The equal-size runs (:mod:`~gqa_lib.evidence.equal_size`, 20 tokens per non-embedding
parameter) end with the best configuration only tying a trigram count model beyond position
:data:`~gqa_lib.evidence.equal_size.FAR`: models that predict no better than the last two
tokens there cannot show what heads buy at long context. cpu-eq-long-v1 trains the same
shape, widths, rate and data four times as long, seeds 0 to 4 of (8, 8), (8, 1) and (1, 1)
(seeds 3 and 4 added when three seeds left the head contrast within seed noise), and this
module reads each run beside the same configuration and seed at 20 tokens per parameter
(the same batch order: batches depend only on seed and step).

The trigram test (:func:`judge`) reads the configuration chosen before these runs, the best
beyond FAR at 20 tokens per parameter, and judges the mean of its runs against the seed
noise of one run's loss beyond FAR measured on the seven seeds at 20 tokens per parameter
(:func:`far_seed_sd`) over sqrt(n): beyond two of those standard deviations it beats (or
trails) the trigram, inside them it ties. Models that beat it can show what heads buy, so
once each configuration has all its planned seeds their paired head contrast
(:func:`head_contrast`) is what the results page judges the query-versus-KV claim on; that
contrast was read at three seeds and at five before seeds were added, so it is judged as a
third look (:data:`LOOKS`).

These runs reuse the learning rate checked at 20 tokens per parameter; cpu-eq-long-lr-v1
checks it at this length, seed 0 of (8, 8) and (1, 1) at half the rate, then of (8, 1)
(added after the first two had run), then seed 1 of all three (added after seed 0 had run;
each reading is then the mean over the seeds run at both rates): :func:`lr_check`, and
whether the lower rate moves the gap between (1, 1) and (8, 8) or the head contrast itself
beyond noise (:func:`lr_gap_shift`, :func:`lr_difference_shift`, :func:`lr_sentence`).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gqa_lib.evidence import equal_size as eq
from gqa_lib.io import DATA_DIR
from gqa_lib.units import format_list, format_p, format_signed

LONG_GRID = DATA_DIR / "sweeps" / "cpu-eq-long-v1.toml"
LR_GRID = DATA_DIR / "sweeps" / "cpu-eq-long-lr-v1.toml"  # the rate check at this length
NOISE_SDS = 2.0  # a single run beats the trigram when it is this many seed sds below it
# The head contrast was read at three seeds (+0.021 nats, p = 0.15) before seeds 3 and 4
# were added, and at five (+0.032, p = 0.024 against 0.025) before seed 5 was: three looks,
# each judged at ALPHA / 3 (equal_size.LOOKS says why).
READ_AT = (3, 5)  # the seeds the contrast had at each earlier look
LOOKS = len(READ_AT) + 1
HEADS = ("(8, 8)", "(8, 1)", "(1, 1)")  # the configurations of the head contrast
COLUMNS = ["config", "seed", "loss_short", "loss_long", "change", "near_long", "far_short",
           "far_long", "vs_trigram"]


def read(path=None) -> pd.DataFrame:
    """The finished rows of the longer grid's CSV (an empty frame before any)."""
    return eq.read(LONG_GRID.with_suffix(".csv") if path is None else path)


def read_lr(path=None) -> pd.DataFrame:
    """The finished rows of the rate check at this length (:data:`LR_GRID`'s CSV)."""
    return eq.read(LR_GRID.with_suffix(".csv") if path is None else path)


def _grid(path=None) -> dict:
    return tomllib.loads(Path(LONG_GRID if path is None else path).read_text())


def trigram_loss(span: str = "far") -> float:
    """The trigram count model's loss beyond position FAR (``span`` "far"), or at
    positions 2-3 ("near"), whole split, T = 512."""
    use = eq.context_use(pd.DataFrame()).set_index("config")  # the count models only
    return float(use.loc["trigram", span])


def planned(path=None) -> int:
    """Runs in the longer grid (every block a full cross product)."""
    return sum(len(b["sizes"]) * len(b["heads"]) * len(b["contexts"]) * len(b["seeds"])
               for b in _grid(path)["block"])


def planned_seeds(path=None) -> int:
    """Seeds the grid plans for each configuration of :data:`HEADS` (the fewest of any)."""
    per = {c: 0 for c in HEADS}
    for b in _grid(path)["block"]:
        for h in b["heads"]:
            label = f"({h[0]}, {h[1]})"
            if label in per:
                per[label] += len(b["seeds"]) * len(b["sizes"]) * len(b["contexts"])
    return min(per.values())


def multiple(path=None) -> float:
    """How many times as many tokens per parameter the longer runs train as the
    equal-size runs (80 / 20 = 4)."""
    return float(_grid(path)["train"]["tokens_per_param"]) / eq.tokens_per_param()


def _positions(by_position: dict) -> pd.DataFrame:
    return pd.DataFrame({"first": by_position["first"], "last": by_position["last"],
                         "nats": by_position["nats"]})


def far_loss(by_position: dict, lo: int = eq.FAR, hi: int = 10**9) -> float:
    """One run's mean loss over positions [lo, hi] (bins weighted by their positions)."""
    return eq.span(_positions(by_position), lo, hi)


def far_seed_sd(ref_runs: pd.DataFrame) -> float:
    """Seed-to-seed standard deviation of one run's loss beyond position FAR, pooled over
    the configurations at the shared rate (NaN before any has two seeds)."""
    m = eq.main_runs(ref_runs)
    if not len(m):
        return float("nan")
    far = m.assign(far=[far_loss(b) for b in m.by_position])
    g = far.groupby("config").far
    n, var = g.count(), g.var(ddof=1)
    ok = n >= 2
    if not ok.any():
        return float("nan")
    return float(np.sqrt(((n[ok] - 1) * var[ok]).sum() / (n[ok] - 1).sum()))


def compare(long_runs: pd.DataFrame, ref_runs: pd.DataFrame) -> pd.DataFrame:
    """One row per longer run with its configuration's run of the same seed at 20 tokens
    per parameter: whole-split losses (``loss_short``, ``loss_long``, ``change`` = long -
    short), loss at positions 2-3 (``near_long``) and beyond FAR (``far_short``,
    ``far_long``), and ``vs_trigram`` = far_long minus the trigram's loss beyond FAR
    (< 0: better than two tokens of context can be). NaN where the reference run is
    missing."""
    if not len(long_runs):
        return pd.DataFrame(columns=COLUMNS)
    ref = eq.main_runs(ref_runs)
    ref = ref.set_index(["config", "seed"]) if len(ref) else ref
    tri = trigram_loss()
    rows = []
    for r in long_runs.itertuples():
        key = (r.config, r.seed)
        has = len(ref) and key in ref.index
        short = ref.loc[key] if has else None
        far_long = far_loss(r.by_position)
        rows.append({"config": r.config, "seed": int(r.seed),
                     "loss_short": float(short.val_loss_full_nats) if has else np.nan,
                     "loss_long": float(r.val_loss_full_nats),
                     "near_long": far_loss(r.by_position, 2, 3),
                     "far_short": far_loss(short.by_position) if has else np.nan,
                     "far_long": far_long, "vs_trigram": far_long - tri})
    out = pd.DataFrame(rows, columns=COLUMNS[:4] + COLUMNS[5:])
    out.insert(4, "change", out.loss_long - out.loss_short)
    out["config"] = pd.Categorical(out.config, eq.CONFIGS, ordered=True)
    return out.sort_values(["config", "seed"]).astype({"config": str}).reset_index(drop=True)


def _common_gains(cmp: pd.DataFrame, columns: list[str]) -> dict[str, pd.DataFrame]:
    """:func:`~gqa_lib.evidence.equal_size.seed_gains` of each of ``columns`` of
    :func:`compare`'s rows, kept to the seeds in which every one of them has all of
    :data:`HEADS` (the same seeds for every column)."""
    per = {c: eq.seed_gains(cmp, c) for c in columns}
    seeds = sorted(set.intersection(*(set(g.index) for g in per.values())))
    return {c: g.loc[seeds] for c, g in per.items()}


def head_gains(cmp: pd.DataFrame) -> dict[str, dict[str, float]]:
    """What 1 -> 8 query heads ((1, 1) - (8, 1)) and 1 -> 8 KV heads ((8, 1) - (8, 8)) gain
    after the longer training (``long``) and at 20 tokens per parameter (``short``), whole
    split and beyond FAR, averaged over the ``n_seeds`` seeds in which all three
    configurations have run (too few for an interval); {} before any."""
    cols = [f"{c}_{t}" for c in ("loss", "far") for t in ("short", "long")]
    g = _common_gains(cmp, cols)
    n = len(g[cols[0]])
    if not n:
        return {}
    return {name: {**{c: float(g[c][name].mean()) for c in cols}, "n_seeds": n}
            for name in eq.GAINS}


def training_change(cmp: pd.DataFrame) -> dict[str, float]:
    """How the longer training moved the head contrast, paired within the seeds in which
    all of :data:`HEADS` have run at both lengths (:func:`compare`'s rows): ``query`` and
    ``kv`` = the gains at 80 minus those at 20 tokens per parameter (means over those
    seeds), and :func:`~gqa_lib.evidence.equal_size.paired_t` of the per-seed change in
    their difference (query gain minus KV gain) merged in (``mean``, ``lo``, ``hi``, ``p``,
    ``n``; NaN intervals below two seeds)."""
    g = _common_gains(cmp, ["loss_short", "loss_long"])
    moved = g["loss_long"] - g["loss_short"]
    return {**eq.paired_t((moved["query"] - moved["kv"]).to_numpy(float)),
            **{k: float(moved[k].mean()) if len(moved) else np.nan for k in eq.GAINS}}


def status(long_runs: pd.DataFrame) -> dict:
    """``done`` and ``planned`` runs, ``seeds`` per configuration of :data:`HEADS`,
    ``min_seeds``, ``planned_seeds`` and ``ready``: each has all its planned seeds (and at
    least :data:`~gqa_lib.evidence.equal_size.MIN_SEEDS`), so the paired head contrast
    (:func:`head_contrast`) is read once, at the end, not at every finished run."""
    seeds = {c: int((long_runs.config == c).sum()) if len(long_runs) else 0 for c in HEADS}
    want = max(planned_seeds(), eq.MIN_SEEDS)
    return {"done": len(long_runs), "planned": planned(), "seeds": seeds,
            "min_seeds": min(seeds.values()), "planned_seeds": want,
            "ready": min(seeds.values()) >= want}


def head_contrast(long_runs: pd.DataFrame) -> dict[str, dict[str, float]]:
    """The equal-size head contrast on the longer runs, paired within the seeds in which
    all of :data:`HEADS` have run (:func:`~gqa_lib.evidence.equal_size.contrast` of their
    whole-split losses at the level of :data:`LOOKS` looks; NaN intervals below two seeds)."""
    return eq.contrast(eq.seed_gains(long_runs), LOOKS)


def curve(long_runs: pd.DataFrame, config: str, label: str) -> pd.DataFrame:
    """A configuration's longer runs' loss by position (mean over their seeds) in
    :func:`equal_size.by_position`'s long form, named ``label`` (for the loss-by-position
    figure); empty before any has run."""
    cols = ["config", "first", "last", "nats", "n_seeds"]
    r = long_runs[long_runs.config == config] if len(long_runs) else long_runs
    if not len(r):
        return pd.DataFrame(columns=cols)
    pos = pd.concat([_positions(b) for b in r.by_position])
    out = pos.groupby(["first", "last"], sort=True).nats.mean().reset_index()
    return out.assign(config=label, n_seeds=len(r))[cols]


def _state(margin: float, sd: float) -> str:
    """'beats', 'trails' or 'ties' the trigram: ``margin`` (trigram minus run) beyond
    :data:`NOISE_SDS` seed standard deviations ``sd`` of one run, or inside them."""
    if np.isfinite(sd) and margin > NOISE_SDS * sd:
        return "beats"
    if np.isfinite(sd) and margin < -NOISE_SDS * sd:
        return "trails"
    return "ties"


def judge(long_runs: pd.DataFrame, ref_runs: pd.DataFrame) -> dict:
    """The trigram test on the longer runs: the ``config`` judged is the one that was best
    beyond position FAR at 20 tokens per parameter (chosen before these runs, so not the
    best of several noisy runs); ``state`` is how its longer run compares with the trigram
    there ('beats', 'ties', 'trails': :func:`_state`, against ``sd``, the seed noise of one
    run, :func:`far_seed_sd`), ``before`` the same for its run at 20, ``far_long``,
    ``far_short``, ``trigram``, ``near_long`` (positions 2-3) and ``trigram_near``, each a
    mean over the ``n`` seeds it has run (``sd`` is then the noise of that mean, the seed
    noise of one run over sqrt(n)); ``state`` is 'waiting' until a run of it has finished;
    ``short_beats`` is whether the runs at 20 beat the trigram (:func:`decides`)."""
    short = eq.head_comparison(ref_runs)
    judged = short["far_best_config"] or eq.REFERENCE
    cmp, sd, tri = compare(long_runs, ref_runs), far_seed_sd(ref_runs), trigram_loss()
    out = {"config": judged, "state": "waiting", "before": "", "sd": sd, "trigram": tri,
           "far_long": np.nan, "far_short": np.nan, "n": 0, "near_long": np.nan,
           "trigram_near": trigram_loss("near"), "short_beats": bool(short["beats_trigram"])}
    r = cmp[cmp.config == judged] if len(cmp) else cmp
    if len(r):
        sd_mean = sd / np.sqrt(len(r))
        far_long, far_short = float(r.far_long.mean()), float(r.far_short.mean())
        out.update(state=_state(tri - far_long, sd_mean),
                   before=_state(tri - far_short, sd_mean), far_long=far_long,
                   far_short=far_short, sd=sd_mean, n=len(r),
                   near_long=float(r.near_long.mean()))
    return out


def seeds(j: dict) -> str:
    """'one seed', '2 seeds': how many runs :func:`judge` averaged."""
    return "one seed" if j["n"] == 1 else f"{j['n']} seeds"


def compared(j: dict) -> str:
    """'still ties the trigram (3.49 against the trigram's 3.495 nats; 3.485 before, the same
    seeds at 20 tokens per parameter; ...)'"""
    word = "still" if j["state"] == j["before"] else "now"
    noise = "a run's" if j["n"] == 1 else f"a mean of {j['n']} runs'"
    same = "the same seed" if j["n"] == 1 else "the same seeds"
    return (f"{word} {j['state']} the trigram ({j['far_long']:.3f} against the trigram's "
            f"{j['trigram']:.3f} nats; {j['far_short']:.3f} before, {same} at "
            f"{eq.tokens_per_param():g} tokens per parameter; {noise} seed noise there "
            f"is {j['sd']:.3f})")


def takeaway(long_runs: pd.DataFrame, ref_runs: pd.DataFrame,
             lr_runs: pd.DataFrame | None = None) -> str:
    """The longer runs' trigram test in one sentence, for a page's takeaways; given
    ``lr_runs``, with what the rate check at this length says of the judged contrast once
    (8, 1) has run (:func:`_rate_clause`)."""
    j, x = judge(long_runs, ref_runs), multiple()
    if j["state"] == "waiting":
        return (f"Trained {x:g} times as long ({len(long_runs)} of {planned()} runs "
                f"finished), {j['config']} has not finished yet.")
    text = (f"Trained {x:g} times as long ({seeds(j)}), {j['config']} beyond position {eq.FAR} "
            + compared(j))
    st = status(long_runs)
    if decides(j) and st["ready"]:  # the contrast the results page judges
        d = head_contrast(long_runs)["difference"]
        text += (f"; paired within {d['n']} seeds, the query heads' gain minus the KV heads' "
                 f"is {d['mean']:+.3f} nats ({eq.interval(d)}): {eq.direction(d)}")
        text += _rate_clause(long_runs, lr_runs)
    elif decides(j):
        text += (f"; their head contrast is judged once all {st['planned']} runs have "
                 f"finished ({st['done']} so far)")
    return text + "."


def _rate_clause(long_runs: pd.DataFrame, lr_runs: pd.DataFrame | None) -> str:
    """'. At half the learning rate ...' once the rate check has all three configurations
    (the contrast's own shift and :func:`lr_confounded`'s reading), else ''."""
    if lr_runs is None or not len(lr_runs):
        return ""
    shifts = lr_shifts(long_runs, lr_runs)
    d = shifts["difference"]
    if not np.isfinite(d["shift"]):
        return ""
    moved = lr_confounded(shifts)
    seeds = eq.seeds_words(d["changes"])
    text = (f". At half the learning rate ({seeds}) it moves by {format_signed(d['shift'])} (noise "
            f"{d['noise']:.3f})")
    if "difference" in moved:
        return text + ", beyond noise: the contrast depends on the rate"
    if moved:
        return text + (", within noise, but the gap between (1, 1) and (8, 8) moves beyond its "
                       "own: the contrast depends on the rate")
    return text + ": the rate favours neither configuration beyond noise"


def decides(j: dict) -> bool:
    """Whether the longer runs, not the runs at 20 tokens per parameter, decide the
    query-versus-KV claim (once each configuration has its seeds, :func:`status`): they beat
    the trigram where the shorter runs do not (:func:`judge`'s ``state`` and ``short_beats``)."""
    return j["state"] == "beats" and not j["short_beats"]


def _moved(cmp: pd.DataFrame, x: float) -> str:
    """' Against the same seeds at 20 tokens per parameter, ...': what the longer training
    changed in the head contrast (:func:`training_change`), for :func:`verdict`."""
    ch = training_change(cmp)
    if ch["n"] < 2:
        return ""
    noise = "beyond" if ch["lo"] > 0 or ch["hi"] < 0 else "within"
    return (f" Against the same {ch['n']} seeds at 20 tokens per parameter, {x:g} times the "
            f"training moved what query heads buy by {ch['query']:+.3f} nats and what KV heads "
            f"buy by {ch['kv']:+.3f}, their difference by {ch['mean']:+.3f} ("
            f"{eq.interval(ch)}, {format_p(ch['p'], ch['alpha'])}): {noise} seed noise.")


def verdict(long_runs: pd.DataFrame, ref_runs: pd.DataFrame) -> str:
    """What the longer runs say, in sentences computed from them: progress, what the
    longer training changed for each configuration (mean over its seeds), the trigram test (:func:`judge`), and
    the head gains once the three configurations have run (one seed: no interval)."""
    n, total, x = len(long_runs), planned(), multiple()
    if not n:
        return (f"None of the {total} longer runs has finished yet; until they have, this "
                "section has nothing to report.")
    cmp = compare(long_runs, ref_runs)
    head = (f"All {total} longer runs have finished." if n >= total else
            f"{n} of {total} longer runs {'has' if n == 1 else 'have'} finished.")
    per = cmp.groupby("config", sort=False)[["loss_short", "loss_long", "change"]].mean()
    changes = "; ".join(f"{c} {r.loss_short:.3f} → {r.loss_long:.3f} nats ({r.change:+.3f})"
                        for c, r in per.iterrows())
    text = (f"{head} Trained {x:g} times as long (the same seeds, shape and rate), the "
            f"whole-split losses move: {changes}.")
    j = judge(long_runs, ref_runs)
    if j["state"] == "waiting":
        return text + f" {j['config']}, the run the trigram test reads, has not finished yet."
    text += (f" Beyond position {eq.FAR}, {j['config']}, the best there at 20 tokens per "
             f"parameter and so chosen before these runs, {compared(j)}"
             + {"beats": (f". At positions 2-3, with at most three tokens to read, it scores "
                          f"{j['near_long']:.3f} against the trigram's "
                          f"{j['trigram_near']:.3f}"
                          + (f", so its lead beyond position {eq.FAR} comes from tokens further "
                             "back: "
                             if j["near_long"] > j["trigram_near"] else ": ")
                          + "with more training these models use more context than a trigram "
                          "count model can."),
                "ties": f": {x:g} times the training does not make these models use long "
                        "context.",
                "trails": "."}[j["state"]])
    st = status(long_runs)
    c = head_contrast(long_runs)
    q, kv, d = c["query"], c["kv"], c["difference"]
    gains = (f"paired within {d['n']} seeds, 1 → 8 query heads lower the loss by "
             f"{q['mean']:.3f} nats and 1 → 8 KV heads by {kv['mean']:.3f}: "
             f"{'query' if d['mean'] > 0 else 'KV'} heads gain more, by {abs(d['mean']):.3f} "
             f"({eq.interval(d)}, {format_p(d['p'], d['alpha'])}")
    looks = (f"p < {d['alpha']:.3g}, since this contrast was read at "
             f"{format_list(READ_AT)} seeds before seeds were added: {LOOKS} looks")
    if decides(j) and st["ready"]:  # the scoreboard's App. I row reads the same contrast
        return text + (f" P{gains[1:]}; judged at {looks}): {eq.direction(d)}.{_moved(cmp, x)} "
                       "These models beat the trigram, so the results page judges the claim "
                       "on them.")
    if decides(j):
        text += (" These models can show what heads buy, so the results page judges the "
                 "query-versus-KV claim on them once each of " + ", ".join(HEADS[:-1])
                 + f" and {HEADS[-1]} has its {st['planned_seeds']} seeds "
                 f"({st['min_seeds']} so far)")
        if np.isfinite(d["p"]):  # an interim reading, shown but not judged
            return text + (f". So far, {gains}): not judged yet (it will be at {looks}).")
        text += "."
    g = head_gains(cmp)
    if g:
        q, kv = g["query"], g["kv"]
        where = "this seed" if q["n_seeds"] == 1 else f"these {q['n_seeds']} seeds"
        text += (f" In {where} 1 → 8 query heads gain {q['loss_long']:.3f} nats "
                 f"({q['loss_short']:.3f} at 20 tokens per parameter) and 1 → 8 KV heads "
                 f"{kv['loss_long']:.3f} ({kv['loss_short']:.3f}); beyond position {eq.FAR}, "
                 f"{q['far_long']:.3f} and {kv['far_long']:.3f} ({q['far_short']:.3f} and "
                 f"{kv['far_short']:.3f}).")
    return text


def lr_check(long_runs: pd.DataFrame, lr_runs: pd.DataFrame) -> pd.DataFrame:
    """:func:`~gqa_lib.evidence.equal_size.lr_check` at this length: seed 0's whole-split
    loss at each rate tried (the longer runs at the shared rate, :data:`LR_GRID`'s at the
    others), the best rate and whether the shared rate is within the longer runs' seed noise
    of it."""
    found = [r for r in (long_runs, lr_runs) if len(r)]
    chk = eq.lr_check(pd.concat(found, ignore_index=True) if found else long_runs)
    order = {c: i for i, c in enumerate(HEADS)}  # (8, 8), (8, 1), (1, 1), as the prose reads
    return chk.sort_values("config", key=lambda c: c.map(order), kind="stable",
                           ignore_index=True) if len(chk) else chk


# What the rate check reads: the gap between (1, 1) and (8, 8) (the sum of the two gains the
# head contrast compares) and the contrast itself, their difference (equal_size.contrast).
LR_COMBOS = {"gap": {"(1, 1)": 1, "(8, 8)": -1},
             "difference": {"(1, 1)": 1, "(8, 1)": -2, "(8, 8)": 1}}


def _combo_shift(long_runs: pd.DataFrame, lr_runs: pd.DataFrame,
                 weights: dict[str, int]) -> dict[str, Any]:
    """``shift``: the combination sum(w x loss) at the lower rate minus at the shared rate,
    paired within each seed that has every configuration at both rates, averaged over those
    ``n`` seeds (``changes``: seed -> its change); ``noise``: two standard deviations of such
    a mean, each change taken as a difference of two combinations as noisy as the
    combination between seeds (2 x sqrt(2 / n) x its sd over the longer runs' seeds; the
    rule's noise, set before the runs). With two or more seeds, ``noise_paired``: the same
    measured on the pairs themselves, each configuration's change between those seeds
    pooled (``dof_paired`` = configurations x (n - 1) degrees of freedom) and summed with
    the weights' squares; NaN below two seeds or where no seed has every configuration."""
    def wide(runs):
        return (runs.pivot_table(index="seed", columns="config", values="val_loss_full_nats")
                if len(runs) else pd.DataFrame())

    def combo(w):
        if not set(weights) <= set(w.columns):
            return pd.Series(dtype=float)
        return sum(k * w[c] for c, k in weights.items()).dropna()

    at_shared, at_half = wide(eq.main_runs(long_runs)), wide(lr_runs)
    shared, half = combo(at_shared), combo(at_half)
    changes = (half - shared.reindex(half.index)).dropna()
    n = len(changes)
    sd = float(shared.std(ddof=1)) if len(shared) >= 2 else np.nan
    paired = np.nan
    if n >= 2:  # each configuration's change, its spread between the seeds pooled
        cfg, seeds = list(weights), changes.index
        var = float((at_half.loc[seeds, cfg] - at_shared.loc[seeds, cfg]).var(ddof=1).mean())
        paired = float(2 * np.sqrt(var * sum(k * k for k in weights.values()) / n))
    return {"shift": float(changes.mean()) if n else np.nan,
            "noise": float(2 * np.sqrt(2 / n) * sd) if n else np.nan, "n": n,
            "changes": {int(k): float(v) for k, v in changes.items()},
            "noise_paired": paired, "dof_paired": len(weights) * (n - 1) if n >= 2 else 0}


def lr_gap_shift(long_runs: pd.DataFrame, lr_runs: pd.DataFrame) -> dict[str, Any]:
    """How the lower rate moves the gap between (1, 1) and (8, 8), the sum of the two gains
    the head contrast compares (:func:`_combo_shift`)."""
    return _combo_shift(long_runs, lr_runs, LR_COMBOS["gap"])


def lr_difference_shift(long_runs: pd.DataFrame, lr_runs: pd.DataFrame) -> dict[str, Any]:
    """How the lower rate moves the head contrast itself, query gain minus KV gain,
    (1, 1) - 2 (8, 1) + (8, 8) (:func:`_combo_shift`; NaN until (8, 1) has run)."""
    return _combo_shift(long_runs, lr_runs, LR_COMBOS["difference"])


def lr_shifts(long_runs: pd.DataFrame, lr_runs: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Both readings of the rate check: ``gap`` (:func:`lr_gap_shift`) and ``difference``
    (:func:`lr_difference_shift`)."""
    return {"gap": lr_gap_shift(long_runs, lr_runs),
            "difference": lr_difference_shift(long_runs, lr_runs)}


def lr_confounded(shifts: dict[str, dict[str, Any]]) -> list[str]:
    """The names in ``shifts`` (``gap``, ``difference``) that moved beyond their noise."""
    return [k for k, g in shifts.items() if np.isfinite(g["shift"]) and abs(g["shift"]) > g["noise"]]


def _noise_note(s: dict[str, Any], what: str = "") -> str:
    """'noise of such a change about 0.027' for one paired seed; 'seed 0 -0.004, seed 1
    +0.010; noise of their mean about 0.019' for several (:func:`_combo_shift`'s ``changes``)."""
    if s["n"] < 2:
        return f"noise{f' of {what}' if what else ''} about {s['noise']:.3f}"
    each = ", ".join(f"seed {k} {format_signed(v)}" for k, v in s["changes"].items())
    n_cfg = s["dof_paired"] // (s["n"] - 1)
    return (f"{each}; noise of their mean about {s['noise']:.3f}, or {s['noise_paired']:.3f} "
            f"measured on these pairs, {s['dof_paired']} degrees of freedom: each of the "
            f"{n_cfg} configurations' changes compared between the {s['n']} seeds")


def lr_sentence(long_runs: pd.DataFrame, lr_runs: pd.DataFrame) -> str:
    """What the rate check at this length says, in sentences computed from it (progress
    until (8, 8) and (1, 1) have run; the difference of the gains once (8, 1) has too; each
    reading averaged over the seeds run at both rates, :func:`_combo_shift`)."""
    total, n = planned(LR_GRID), len(lr_runs)
    progress = (f"{n} of its {total} runs {'has' if n == 1 else 'have'} finished "
                f"({LR_GRID.stem})")
    chk = lr_check(long_runs, lr_runs).set_index("config")
    if not {"(8, 8)", "(1, 1)"} <= set(chk.index):
        return progress + "; until (8, 8) and (1, 1) have, the shared rate is unchecked at " \
            "this length."
    lr0 = eq.base_lr()
    half = [c for c in chk if c.startswith("loss at ") and c != f"loss at {lr0:g}"][0]
    seeds = chk.seeds.unique()
    per = "; ".join(f"{c} {chk.loc[c, half]:.3f} nats against {chk.loc[c, f'loss at {lr0:g}']:.3f}"
                    + ("" if len(seeds) == 1 else f" ({eq.seeds_words(chk.loc[c, 'seeds'])})")
                    for c in [h for h in HEADS if h in chk.index])
    who = ("the seeds run at both rates score, on average" if len(seeds) > 1 else
           f"{eq.seeds_words(seeds[0])} scores" if "," not in seeds[0] else
           f"{eq.seeds_words(seeds[0])} score, on average")
    worse = [c for c, w in chk.within_noise.items() if not pd.isna(w) and not bool(w)]
    shifts = lr_shifts(long_runs, lr_runs)
    g, d = shifts["gap"], shifts["difference"]
    text = (f"At {half[8:]}, half the shared rate, {who} (against the shared rate, {lr0:g}): "
            f"{per}. "
            + (f"The shared rate is within seed noise of the best rate tried for "
               f"{'both' if len(chk) == 2 else 'all three'}"
               if not worse else
               "The shared rate is beyond seed noise from the best rate tried for "
               + " and ".join(worse))
            + f". The gap between (1, 1) and (8, 8), the sum of what query and KV heads "
            f"buy, moves by {format_signed(g['shift'])} nats at the lower rate "
            f"({_noise_note(g, 'such a change')})")
    if np.isfinite(d["shift"]):
        at = {name: eq.seed_gains(r).loc[list(d["changes"])].mean()
              for name, r in (("lower", lr_runs), ("shared", long_runs))}
        text += (f", and their difference, what query heads buy over KV heads, by "
                 f"{format_signed(d['shift'])} ({_noise_note(d)}; "
                 f"{format_signed(at['lower']['query'] - at['lower']['kv'])} at the lower rate "
                 f"against {format_signed(at['shared']['query'] - at['shared']['kv'])} at the "
                 f"shared rate, the same {'seed' if d['n'] == 1 else 'seeds'}): ")
    else:
        text += (f"; their difference, which needs (8, 1) at the lower rate too, is not "
                 f"checked yet ({n} of the {total} runs of {LR_GRID.stem} have finished): ")
    moved = lr_confounded(shifts)
    names = {"gap": "the gap", "difference": "the difference"}
    # the measured noise can only add a caveat: the rule set before the runs decides
    tight = [k for k, x in shifts.items() if k not in moved and x["n"] >= 2
             and abs(x["shift"]) > x["noise_paired"]]
    caveat = ("" if not tight else
              f" Against the noise measured on the pairs, {' and '.join(names[k] for k in tight)} "
              f"{'moves' if len(tight) == 1 else 'move'} beyond it; with so few degrees of freedom "
              "that measure is itself uncertain, and the rule, set before these runs, reads the "
              "spread between seeds.")
    if not moved:
        return text + ("the shared rate favours neither configuration beyond noise"
                       + (" so far." if not np.isfinite(d["shift"]) else ".")) + caveat
    what = " and ".join(names[k] for k in moved)
    return text + (f"the lower rate moves {what} beyond noise, so the head contrast depends "
                   "on the rate.") + caveat
