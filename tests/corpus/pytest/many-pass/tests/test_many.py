import pytest


@pytest.mark.parametrize("n", range(300))
def test_square_is_non_negative(n):
    assert n * n >= 0


@pytest.mark.parametrize("a", range(10))
@pytest.mark.parametrize("b", range(10))
def test_addition_commutes(a, b):
    assert a + b == b + a
