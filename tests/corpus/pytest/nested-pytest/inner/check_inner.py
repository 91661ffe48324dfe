def test_inner_fails():
    assert 1 == 2


def test_inner_passes():
    assert True
