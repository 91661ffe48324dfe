import unittest

from missing_package_for_clude import thing


class TestBroken(unittest.TestCase):
    def test_thing(self):
        self.assertTrue(thing)
