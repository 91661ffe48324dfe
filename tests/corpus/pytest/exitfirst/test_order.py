import pytest


def test_one():
    assert True


def test_two():
    assert 2 + 2 == 5


def test_three():
    assert False


def test_four():
    assert True
