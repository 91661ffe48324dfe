import unittest


class TestStrings(unittest.TestCase):
    def test_upper(self):
        self.assertEqual("abc".upper(), "ABC")

    def test_split(self):
        self.assertEqual("a b".split(), ["a", "b"])


class TestNumbers(unittest.TestCase):
    def test_add(self):
        self.assertEqual(1 + 1, 2)
