def test_green():
    assert True
