import unittest


class TestMany(unittest.TestCase):
    pass


for _n in range(30):
    setattr(TestMany, f"test_number_{_n:02d}", lambda self, n=_n: self.assertGreaterEqual(n, 0))
