import pytest

LIMIT = int("not a number")
