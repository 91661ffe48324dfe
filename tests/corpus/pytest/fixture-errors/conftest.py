import pytest


@pytest.fixture
def database():
    raise ConnectionError("database is down")
