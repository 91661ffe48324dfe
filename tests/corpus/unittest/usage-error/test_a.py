import unittest


class TestA(unittest.TestCase):
    def test_a(self):
        self.assertTrue(True)
