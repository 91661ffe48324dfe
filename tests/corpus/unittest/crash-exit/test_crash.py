import os
import unittest


class TestCrash(unittest.TestCase):
    def test_a_before(self):
        self.assertTrue(True)

    def test_b_exits_the_interpreter(self):
        os._exit(7)

    def test_c_after(self):
        self.assertTrue(True)
