def shout(text):
    """Upper-case text with an exclamation mark.

    >>> shout("hi")
    'HI!'
    >>> shout("ok")
    'OK!!'
    """
    return text.upper() + "!"


def whisper(text):
    """
    >>> whisper("HI")
    'hi'
    """
    return text.lower()


def broken(text):
    """
    >>> broken("x")
    'x'
    """
    raise ValueError("broken on purpose")
