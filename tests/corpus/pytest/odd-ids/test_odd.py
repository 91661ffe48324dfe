import pytest


@pytest.mark.parametrize("value", ["a::b", "[x]", "naïve", "日本語", "sp ace", "a]b[c", "ok"],
                         ids=["a::b", "[x]", "naïve", "日本語", "sp ace", "a]b[c", "ok"])
def test_param(value):
    assert value != "a]b[c"


def test_café():
    assert "é" == "e"


class TestÜber:
    @pytest.mark.parametrize("n", [1, 2], ids=["one::two", "x[1]"])
    def test_method(self, n):
        assert n == 1
