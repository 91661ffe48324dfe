def area(width, height):
    return width + height


def scale(value, factor):
    return value / factor
