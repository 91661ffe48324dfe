package strs

import "testing"

func TestShout(t *testing.T) {
	cases := map[string]string{
		"a": "A!", "b": "B!", "c": "C!", "d": "D!", "e": "E!", "f": "F!", "g": "G!", "h": "H!",
		"i": "I!", "j": "J!", "k": "K!", "l": "L!", "m": "M!", "n": "N!", "o": "O!",
	}
	for in, want := range cases {
		in, want := in, want
		t.Run(in, func(t *testing.T) {
			t.Parallel()
			if got := Shout(in); got != want {
				t.Errorf("Shout(%q) = %q, want %q", in, got, want)
			}
		})
	}
}

func TestShoutEmpty(t *testing.T) {
	if Shout("") != "!" {
		t.Error("empty")
	}
}
