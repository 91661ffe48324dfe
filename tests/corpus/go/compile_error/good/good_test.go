package good

import "testing"

func TestFine(t *testing.T) {}
