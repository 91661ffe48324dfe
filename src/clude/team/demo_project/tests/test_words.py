from textkit.words import title_case, word_count


def test_word_count():
    assert word_count("two  spaces here") == 3


def test_title_case():
    assert title_case("hello world") == "Hello World"
