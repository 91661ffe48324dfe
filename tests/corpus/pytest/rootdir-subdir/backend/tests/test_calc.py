import pytest

from app.calc import mean


def test_mean():
    assert mean([1, 2, 3]) == 2


def test_mean_of_nothing():
    assert mean([]) == 0


def test_wrong():
    assert mean([2, 2]) == 3


@pytest.fixture
def missing_data(no_such_fixture_here):
    return no_such_fixture_here


def test_missing_fixture(missing_data):
    assert missing_data
