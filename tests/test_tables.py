"""cost_table agrees with gqa_lib.cost cell by cell; readable() formats with units."""

import numpy as np
import pandas as pd
import pytest

from gqa_lib import cost
from gqa_lib.book import tables
from gqa_lib.arch.config import get_preset, paper_family
from gqa_lib.errors import GQAError

MODELS = ["llama-3.2-1b", "mistral-7b-v0.1", "gemma-7b", "qwen2.5-0.5b"]
CONTEXTS = [1024, 8192, 131072]


@pytest.fixture(scope="module")
def df():
    return tables.cost_table([get_preset(m) for m in MODELS], CONTEXTS)


def test_one_row_per_model_and_context_in_order(df):
    assert list(df.model) == [m for m in MODELS for _ in CONTEXTS]
    assert list(df.context_len) == CONTEXTS * len(MODELS)


def test_every_cell_matches_the_cost_model(df):
    for row in df.itertuples():
        cfg, T = get_preset(row.model), row.context_len
        p = cost.param_counts(cfg)
        f = cost.inference_flops(cfg, T)
        assert row.params_non_embedding == p["non_embedding"]
        assert row.params_attention == sum(
            p[k] for k in ("attn_q", "attn_k", "attn_v", "attn_o", "attn_bias"))
        assert row.kv_cache_values == cost.kv_cache_values(cfg, T)
        assert row.kv_cache_bytes == cost.kv_cache_bytes(cfg, T, dtype="bf16")
        assert row.memory_values == cost.inference_memory_values(cfg, T)
        assert row.memory_bytes == cost.inference_memory_bytes(cfg, T, dtype="bf16")
        assert row.flops_per_token == cost.flops_per_token(cfg, T)
        assert row.flops_time_variant == f["time_variant"]
        assert row.kv_share_of_memory == pytest.approx(row.kv_cache_values / row.memory_values)
        assert row.attention_share_of_flops == pytest.approx(
            f["time_variant"] / f["total"])


def test_sliding_window_caps_the_cache(df):
    mistral = df[df.model == "mistral-7b-v0.1"]
    assert mistral.kv_cache_values.iloc[1] == mistral.kv_cache_values.iloc[2]


def test_conventions_pass_through():
    cfg = paper_family(32)
    paper = tables.cost_table([cfg], [131072], include_norms=False).iloc[0]
    L, d, dh, nh, nkv, dff = 32, 2048, 64, 32, 8, int(8 * 2048 / 3)
    n = L * (2 * d * dh * (nh + nkv) + 3 * d * dff)  # the paper's N, norms ignored
    assert paper.params_non_embedding == n
    kv = 2 * 131072 * L * dh * nkv
    assert paper.kv_share_of_memory == pytest.approx(kv / (n + kv))
    with_embed = tables.cost_table([get_preset("llama-3.2-1b")], [1024],
                                   include_embeddings=True).iloc[0]
    assert with_embed.weights_values == cost.params_total(get_preset("llama-3.2-1b"))
    fp32 = tables.cost_table([cfg], [1024], dtype="fp32").iloc[0]
    assert fp32.kv_cache_bytes == 4 * fp32.kv_cache_values


def test_names_from_mapping_or_labels():
    cfg = paper_family(16)
    named = tables.cost_table({"mine": cfg}, [1024])
    assert list(named.model) == ["mine"]
    unnamed = tables.cost_table([cfg.__class__(n_layer=2, d_model=64, n_head=4, n_kv_head=2)],
                                [1024])
    assert list(unnamed.model) == ["L2 d64 H(4,2) dh16"]
    with pytest.raises(GQAError, match="duplicate"):
        tables.cost_table([cfg, cfg], [1024])


def test_readable_formats_with_units(df):
    view = tables.readable(df.iloc[[2]], ["model", "context_len", "kv_cache_bytes",
                                          "kv_share_of_memory", "flops_per_token"])
    assert list(view.columns) == ["model", "T", "KV cache", "KV share of memory",
                                  "FLOPs / token"]
    row = view.iloc[0]
    assert row["T"] == "128K" and row["KV cache"] == "4 GiB"
    assert row["KV share of memory"].endswith("%") and row["FLOPs / token"].endswith("GFLOP")
    with pytest.raises(GQAError, match="no display format"):
        tables.readable(df, ["val_loss"])
    assert np.all(tables.readable(df).columns.str.len() > 0)


def test_show_moves_secondary_columns_into_a_toggle():
    df = pd.DataFrame({"model": ["a", "b"], "T": [128, 512], "kv_cache_bytes": [2.0**30, 2.0**31],
                       "note": ["x", "y"]})
    t = tables.show(df, ["model", "kv_cache_bytes"], details=["note"])
    assert list(t.frame.columns) == ["model", "KV cache"]
    assert list(t.details.frame.columns) == ["model", "note"]  # each row named again
    assert t.summary == "More columns: note"
    html = t._repr_html_()
    assert html.index("</table>") < html.index('<details class="gqa-details">')
    assert "white-space:normal" in html.split("<th ", 2)[1]  # headers wrap
    keyed = tables.show(df, ["model", "note"], details=["kv_cache_bytes"], key=["model", "T"],
                        summary="sizes")
    assert list(keyed.details.frame.columns) == ["model", "T", "KV cache"]
    assert "sizes" in repr(keyed) and "KV cache" in repr(keyed)


def test_show_can_fold_a_whole_table():
    t = tables.show(pd.DataFrame({"a": [1, 2]}), fold="All 2 rows")
    html = t._repr_html_()
    assert html.startswith('<details class="gqa-details gqa-fold"><summary>All 2 rows</summary>')
    assert html.endswith("</table></div></details>")


def test_show_writes_a_head_configuration_in_one_column():
    df = pd.DataFrame({"n_head": [8, 32], "n_kv_head": [1, 8], "paper_n_head": [8, 16],
                       "paper_n_kv_head": [2, 8], "z": [1.0, 2.0]})
    t = tables.show(df, ["heads", "paper_heads"])
    assert list(t.frame.columns) == ["H = (n_h, n_kv)", "paper's H"]
    assert t.frame.iloc[:, 0].tolist() == ["(8, 1)", "(32, 8)"]
    assert t.frame.iloc[:, 1].tolist() == ["(8, 2)", "(16, 8)"]
    assert tables.readable(df, ["heads"]).iloc[0, 0] == "(8, 1)"
    with pytest.raises(GQAError, match="'heads' is derived from 'n_head' and 'n_kv_head'"):
        tables.show(df[["z"]], ["heads", "z"])


def test_a_change_that_rounds_to_nothing_shows_no_minus_sign():
    """A float that rounds to -0.000 shows as its format writes zero (signed or not)."""
    from gqa_lib.book.tables import show

    df = pd.DataFrame({"config": ["a", "b", "c", "d"], "residual": [-0.0004, -0.0042, 0.0, -0.5]})
    t = show(df, formats={"residual": "{:+.3f}".format})
    assert list(t.frame["residual"]) == ["+0.000", "-0.004", "+0.000", "-0.500"]
    t = show(df.assign(residual=[-0.0004, -0.04, -0.0004, -0.0004]),
             formats={"residual": lambda v: f"{v:.2f} nats"})
    assert list(t.frame["residual"]) == ["0.00 nats", "-0.04 nats", "0.00 nats", "0.00 nats"]
