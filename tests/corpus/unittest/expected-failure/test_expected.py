import unittest


class TestExpected(unittest.TestCase):
    def test_plain(self):
        self.assertTrue(True)

    @unittest.expectedFailure
    def test_known_bug(self):
        self.assertEqual(1, 2)

    @unittest.expectedFailure
    def test_fixed_by_accident(self):
        self.assertEqual(1, 1)
