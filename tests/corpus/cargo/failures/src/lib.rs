//! Arithmetic with a bug in it.

/// Adds two numbers (wrongly: it subtracts).
pub fn add(a: i32, b: i32) -> i32 {
    a - b
}

#[cfg(test)]
mod tests {
    use super::add;

    #[test]
    fn adds_zero() {
        assert_eq!(add(4, 0), 4);
    }

    #[test]
    fn adds_two() {
        assert_eq!(add(1, 2), 3);
    }
}
