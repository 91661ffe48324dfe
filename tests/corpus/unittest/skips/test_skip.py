import sys
import unittest


class TestSkips(unittest.TestCase):
    def test_runs(self):
        self.assertTrue(True)

    @unittest.skip("not ready")
    def test_decorated(self):
        self.fail("skipped")

    @unittest.skipIf(sys.version_info > (2,), "python 2 only")
    def test_conditional(self):
        self.fail("skipped")

    def test_skips_itself(self):
        self.skipTest("no network")


@unittest.skip("whole class")
class TestSkippedClass(unittest.TestCase):
    def test_inside(self):
        self.fail("skipped")
