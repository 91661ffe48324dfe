from textkit.stats import mean, median


def test_mean():
    assert mean([2, 4, 6]) == 4


def test_median():
    assert median([5, 1, 3]) == 3
