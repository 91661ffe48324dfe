package list

import "testing"

func TestFirst(t *testing.T) {}

func TestThird(t *testing.T) {
	if Third([]int{1, 2}) != 0 {
		t.Error("unreachable")
	}
}

func TestNeverRuns(t *testing.T) {}
