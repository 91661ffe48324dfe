import unittest


class Helper(unittest.TestCase):
    """A base class with no test methods."""

    def helper(self):
        return 1
