package calc

// Add is wrong on purpose: it subtracts.
func Add(a, b int) int { return a - b }

// Div divides a by b.
func Div(a, b int) int { return a / b }
