

def test_z_has_one_form():
    from gqa_lib.units import format_z

    assert format_z(56604.8) == "56,605" and format_z(153462.6) == "153,463"
    assert format_z(12.3456) == "12.35"


def test_heads_have_one_form():
    from gqa_lib.fit.per_head import config_label
    from gqa_lib.units import format_heads, format_heads_each

    assert format_heads(8, 1) == "(8, 1)" == config_label((8, 1))
    assert format_heads(32.0, 8.0) == "(32, 8)"
    assert format_heads_each((8, 16), [1, 2]) == ["(8, 1)", "(16, 2)"]
