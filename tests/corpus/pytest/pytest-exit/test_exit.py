import pytest


def test_first():
    assert True


def test_gives_up():
    pytest.exit("the database schema is missing")


def test_never_runs():
    assert True
