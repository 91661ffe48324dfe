package broken

// Name should return a string.
func Name() string {
	return 42
}
