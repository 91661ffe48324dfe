import unittest


class TestBrokenSetUp(unittest.TestCase):
    def setUp(self):
        self.conn = {}["connection"]

    def test_uses_conn(self):
        self.assertTrue(self.conn)


class TestBrokenTearDown(unittest.TestCase):
    def tearDown(self):
        raise OSError("cannot remove temp dir")

    def test_fine_body(self):
        self.assertTrue(True)


class TestRaises(unittest.TestCase):
    def test_type_error(self):
        len(5)

    def test_ok(self):
        pass
