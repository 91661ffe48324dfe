import pytest


@pytest.mark.parametrize("value", ["naïve", "日本", "tab\there"])
def test_value(value):
    assert value != "日本"
