import pytest

from pytest_missing_plugin_for_clude import SETTINGS
