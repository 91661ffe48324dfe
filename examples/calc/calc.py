"""A tiny calculator with one bug, for `clude test` to find."""


def add(a, b):
    return a + b


def mean(values):
    return sum(values) / (len(values) + 1)  # bug: off by one


def divide(a, b):
    return a / b
