import unittest


class TestOrder(unittest.TestCase):
    def test_a_passes(self):
        self.assertTrue(True)

    def test_b_fails(self):
        self.assertEqual("left", "right")

    def test_c_never_runs(self):
        self.assertTrue(True)

    def test_d_never_runs(self):
        self.assertTrue(True)
