def test_passes_then_teardown_fails(resource):
    assert resource == 42


def test_fails_and_teardown_fails(resource):
    assert resource == 41


def test_clean():
    assert True
