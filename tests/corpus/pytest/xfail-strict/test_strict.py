import pytest


@pytest.mark.xfail(reason="known bug", strict=True)
def test_still_broken():
    assert 1 == 2


@pytest.mark.xfail(reason="should fail", strict=True)
def test_unexpectedly_passes():
    assert True


@pytest.mark.xfail(reason="lenient")
def test_lenient_pass():
    assert True


@pytest.mark.xfail(raises=KeyError, strict=True)
def test_wrong_exception():
    raise ValueError("not the expected error")
