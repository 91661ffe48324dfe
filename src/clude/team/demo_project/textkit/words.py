"""Words."""


def word_count(text):
    return len(text.split(" "))


def title_case(text):
    return " ".join(word.capitalize() for word in text.split())
