import unittest

import pytest


class TestWithSubTest(unittest.TestCase):
    def test_even(self):
        for n in (2, 3, 4):
            with self.subTest(n=n):
                self.assertEqual(n % 2, 0)

    def test_all_good(self):
        for n in (1, 2):
            with self.subTest(n=n):
                self.assertGreater(n, 0)


def test_plain():
    assert True
