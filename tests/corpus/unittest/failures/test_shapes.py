import unittest

from shapes import area, scale


class TestShapes(unittest.TestCase):
    def test_area(self):
        self.assertEqual(area(2, 3), 6)

    def test_area_square(self):
        self.assertEqual(area(2, 2), 4)

    def test_scale(self):
        self.assertEqual(scale(4, 0), 0)

    def test_plain_assert(self):
        assert area(1, 1) == 1, "one by one is one"
