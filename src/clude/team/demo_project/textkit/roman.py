"""Roman numerals (not written yet)."""


def to_roman(number):
    raise NotImplementedError("to_roman")
