package mathx

import (
	"fmt"
	"testing"
)

func TestAbs(t *testing.T) {
	for _, n := range []int{-3, -2, -1, 0, 1, 2, 3, 4, 5, 6} {
		t.Run(fmt.Sprintf("n=%d", n), func(t *testing.T) {
			if Abs(n) < 0 {
				t.Fatalf("Abs(%d) = %d", n, Abs(n))
			}
		})
	}
}

func TestMax(t *testing.T) {
	if Max(2, 3) != 3 {
		t.Error("Max(2, 3) != 3")
	}
}

func TestMaxEqual(t *testing.T) {
	if Max(4, 4) != 4 {
		t.Error("Max(4, 4) != 4")
	}
}

func TestSkipped(t *testing.T) {
	t.Skip("documented as skipped")
}

func ExampleMax() {
	fmt.Println(Max(1, 9))
	// Output: 9
}
