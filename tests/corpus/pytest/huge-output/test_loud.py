import pytest

LINE = "x" * 99 + "\n"


def test_quiet():
    print("a little output")


def test_prints_five_megabytes_then_fails():
    for _ in range(52_429):
        print(LINE, end="")
    assert "needle" in "haystack"


def test_prints_and_passes():
    print(LINE * 1000)
