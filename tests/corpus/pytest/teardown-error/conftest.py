import pytest


@pytest.fixture
def resource():
    yield 42
    raise RuntimeError("could not release the resource")
