"""Number formats: one rule per kind of number, in tables, prose, charts and the CLI."""

import pytest

from gqa_lib.errors import GQAError



def test_z_has_one_form():
    from gqa_lib.units import format_z

    assert format_z(56604.8) == "56,605" and format_z(153462.6) == "153,463"
    assert format_z(12.3456) == "12.35"


def test_p_values_have_one_form():
    from gqa_lib.units import format_p

    assert format_p(0.0912) == "p = 0.09" and format_p(0.0069) == "p = 0.007"
    assert format_p(0.0004) == "p < 0.001" and format_p(float("nan")) == "p undefined"
    assert format_p(0.01) == "p = 0.01" and format_p(1.0) == "p = 1.00"


def test_a_p_near_its_threshold_shows_which_side_it_is_on():
    from gqa_lib.units import format_p

    # two decimals would print 0.02 against 0.025, and 0.017 for a p below 0.0167
    assert format_p(0.0241, alpha=0.025) == "p = 0.024"
    assert format_p(0.01664, alpha=0.05 / 3) == "p = 0.0166"
    assert format_p(0.0168, alpha=0.05 / 3) == "p = 0.017"
    for p, a in [(0.0241, 0.025), (0.01664, 0.05 / 3), (0.0168, 0.05 / 3), (0.04999, 0.05),
                 (0.05001, 0.05)]:
        shown = float(format_p(p, alpha=a).split("= ")[1])
        assert (shown < a) == (p < a)
    # far from the threshold, or without one, the one form stays
    assert format_p(0.3, alpha=0.05) == format_p(0.3) == "p = 0.30"
    assert format_p(0.0004, alpha=0.0005) == "p < 0.001"


def test_savings_name_their_sign_in_words():
    from gqa_lib.units import format_saving

    assert format_saving(57.94, "memory") == "57.9% less memory"
    assert format_saving(-11.06, "FLOPs") == "11.1% more FLOPs"
    assert format_saving(61.5, "FLOPs") == "61.5% fewer FLOPs"
    assert format_saving(-3.0, "Z") == "3.0% higher Z" and format_saving(0.0, "Z") == "0.0% lower Z"
    assert format_saving(-12.0, "latency") == "12.0% higher latency"  # a slower pick says so


def test_heads_have_one_form():
    from gqa_lib.fit.per_head import config_label
    from gqa_lib.units import format_heads, format_heads_each

    assert format_heads(8, 1) == "(8, 1)" == config_label((8, 1))
    assert format_heads(32.0, 8.0) == "(32, 8)"
    assert format_heads_each((8, 16), [1, 2]) == ["(8, 1)", "(16, 2)"]


def test_lists_read_as_words():
    from gqa_lib.units import format_list

    assert format_list([]) == "none" and format_list(["(4, 1)"]) == "(4, 1)"
    assert format_list(["(4, 1)", "(2, 1)", "(1, 1)"]) == "(4, 1), (2, 1) and (1, 1)"


def test_token_counts_use_the_books_k_of_1024():
    from gqa_lib.units import format_context, format_tokens

    assert format_tokens(131072) == "128K" == format_context(131072)
    assert format_tokens(1_480_000) == "1.41M" and format_tokens(921_600) == "900K"
    assert format_tokens(1000) == "1000"


def test_a_signed_change_is_never_a_negative_zero():
    from gqa_lib.units import format_signed

    assert [format_signed(x) for x in (-0.0042, 0.0042, -0.0004, 0.0004, -0.0, 0.0)] == [
        "-0.004", "+0.004", "+0.000", "+0.000", "+0.000", "+0.000"]
    assert format_signed(-0.04, 1) == "+0.0" and format_signed(-0.06, 1) == "-0.1"


NUMBERS = [0, 0.5, 1, 7, 12.34, 999, 999.6, 1000, 1234, 20_600, 20_649, 99_950, 999_499,
           999_600, 1e6, 2.5e6, 1.5e9, 3.3e9, 2.05e12, 7e15, 56_604.8, 153_462.6, 5e20, -2_000]


@pytest.mark.parametrize("kind", ["count", "flops", "z"])
def test_charts_write_numbers_as_the_tables_do(kind):
    """Chart axes and tooltips format numbers in the browser, by a Vega expression
    (figures.number_expr); rendered by Vega itself (vl-convert), it writes every number as
    units.format_count / format_flops / format_z does: '20.6 K', not Vega's SI '20.6k'."""
    vlc = pytest.importorskip("vl_convert")
    import html
    import re

    import altair as alt
    import pandas as pd

    from gqa_lib.book.figures import number_expr
    from gqa_lib.units import format_count, format_flops, format_z

    python = {"count": format_count, "flops": format_flops, "z": format_z}[kind]
    df = pd.DataFrame({"v": NUMBERS, "i": [f"row{i}" for i in range(len(NUMBERS))]})
    chart = alt.Chart(df).transform_calculate(t=number_expr(kind, "datum.v")).mark_text(
    ).encode(y=alt.Y("i:N", sort=None, axis=None), text="t:N")
    svg = vlc.vegalite_to_svg(chart.to_dict())
    shown = [html.unescape(t) for t in re.findall(r"<text[^>]*>([^<]*)</text>", svg)]
    assert shown == [python(v) for v in NUMBERS]


def test_a_kind_the_charts_do_not_know_is_refused():
    from gqa_lib.book.figures import number_expr

    with pytest.raises(GQAError, match="kind='bytes' is not one of count, flops, z"):
        number_expr("bytes")
