from mathlib import add, ratio


def test_add_ok():
    assert add(2, 0) == 2


def test_add():
    assert add(2, 3) == 5


def test_ratio():
    assert ratio(1, 0) == 0


class TestGroup:
    def test_message(self):
        raise ValueError("bad input: 42")
