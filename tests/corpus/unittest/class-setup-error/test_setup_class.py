import unittest


def setUpModule():
    pass


class TestBrokenClassSetup(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        raise ConnectionError("cannot reach the server")

    def test_one(self):
        pass

    def test_two(self):
        pass


class TestFine(unittest.TestCase):
    def test_fine(self):
        self.assertEqual(1, 1)
