def test_fine():
    assert True


def test_uses_broken_fixture(database):
    assert database


def test_uses_missing_fixture(cache_dir):
    assert cache_dir
