"""trainer.controls: a layer set parsed in one place, for the engine, the CLI and the Style page."""
import pytest

from trainer.controls import Control, ControlError, parse_layers


@pytest.mark.parametrize("value, expected", [("0,1,6", [0, 1, 6]), (" 6, 0 ,0", [0, 6]), ("", []),
                                             ([3, 1], [1, 3]), (range(2), [0, 1]), ("2,", [2])])
def test_parse_layers_gives_sorted_distinct_indices(value, expected):
    assert parse_layers(value) == expected


@pytest.mark.parametrize("value, message", [("a", "'a' is not a layer number"), ("1.5", "'1.5' is not"),
                                            ("0,8", "no layer 8; this model has layers 0..7"),
                                            ("-1", "no layer -1"), ([True], "is not a layer number")])
def test_parse_layers_names_the_bad_item(value, message):
    with pytest.raises(ValueError, match=message):
        parse_layers(value, 8)


def test_a_layers_control_checks_through_the_same_parser():
    c = Control("style_layers", "layers", "", choices=[f"{r} px" for r in (4, 4, 8, 8)])
    assert c.check("0, 3") == "0, 3" and c.check("") == ""
    with pytest.raises(ControlError, match="no such layer"):
        c.check("4")
    with pytest.raises(ControlError, match="not layer numbers"):
        c.check("x")


@pytest.mark.parametrize("kind", ["seed", "int", "float"])
def test_a_number_beyond_any_float_is_out_of_range_and_shown_short(kind):
    c = Control("seed", kind, 0, minimum=0, maximum=10)
    with pytest.raises(ControlError, match=r"^seed = 9{30}\.\.\.: out of range; allowed") as e:
        c.check(10 ** 400 - 1)
    assert len(str(e.value)) < 120
