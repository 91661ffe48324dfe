package calc

import "testing"

func TestAdd(t *testing.T) {
	if got := Add(2, 3); got != 5 {
		t.Errorf("Add(2, 3) = %d, want 5", got)
	}
}

func TestDiv(t *testing.T) {
	cases := []struct {
		name       string
		a, b, want int
	}{
		{"whole", 6, 3, 2},
		{"rounds_down", 7, 2, 4},
		{"negative", -6, 3, -2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Logf("dividing %d by %d", c.a, c.b)
			if got := Div(c.a, c.b); got != c.want {
				t.Fatalf("Div(%d, %d) = %d, want %d\nmore detail on a second line", c.a, c.b, got, c.want)
			}
		})
	}
}

func TestSub(t *testing.T) {
	if Add(5, 3) != 2 {
		t.Error("unexpected")
	}
}
