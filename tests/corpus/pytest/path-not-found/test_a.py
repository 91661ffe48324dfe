import pytest


def test_a():
    assert True
