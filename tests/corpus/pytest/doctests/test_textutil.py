from textutil import whisper


def test_whisper():
    assert whisper("A") == "a"
