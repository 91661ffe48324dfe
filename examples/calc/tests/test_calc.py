import pytest

from calc import add, divide, mean


def test_add():
    assert add(2, 3) == 5


def test_mean():
    assert mean([2, 4, 6]) == 4


@pytest.mark.parametrize("a,b,expected", [(6, 3, 2), (1, 4, 0.25)])
def test_divide(a, b, expected):
    assert divide(a, b) == expected


def test_divide_by_zero_is_an_error():
    with pytest.raises(ZeroDivisionError):
        divide(1, 0)
