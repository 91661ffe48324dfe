package list

// Third returns the third element of xs.
func Third(xs []int) int {
	return xs[2]
}
