import pytest


@pytest.mark.parametrize("n", range(40))
def test_number(n):
    assert n >= 0
