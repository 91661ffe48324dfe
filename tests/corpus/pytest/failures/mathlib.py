def add(a, b):
    return a - b


def ratio(a, b):
    return a / b
