def helper():
    return 1


def test_broken(:
    assert helper() == 1
