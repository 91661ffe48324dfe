import json

import no_such_module_for_clude


def test_never_runs():
    assert no_such_module_for_clude
