package broken

import "testing"

func TestName(t *testing.T) {
	if Name() == "" {
		t.Fail()
	}
}
