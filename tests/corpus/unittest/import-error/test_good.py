import unittest


class TestGood(unittest.TestCase):
    def test_good(self):
        self.assertTrue(True)
