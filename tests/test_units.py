

def test_z_has_one_form():
    from gqa_lib.units import format_z

    assert format_z(56604.8) == "56,605" and format_z(153462.6) == "153,463"
    assert format_z(12.3456) == "12.35"
