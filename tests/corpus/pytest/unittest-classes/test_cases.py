import unittest


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

    def test_fails(self):
        self.assertIn("x", "abc")

    @unittest.expectedFailure
    def test_known(self):
        self.assertEqual(1, 2)

    @unittest.skip("later")
    def test_later(self):
        pass
