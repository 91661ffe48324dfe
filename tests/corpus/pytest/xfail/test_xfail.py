import pytest


def test_plain():
    assert True


@pytest.mark.xfail(reason="known bug")
def test_known_bug():
    assert 1 == 2


@pytest.mark.xfail(raises=ZeroDivisionError)
def test_known_division():
    1 / 0


def test_imperative_xfail():
    pytest.xfail("not implemented")


@pytest.mark.xfail(reason="fixed by accident")
def test_fixed_by_accident():
    assert True
