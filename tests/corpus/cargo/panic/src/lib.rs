//! A helper that panics on short input.

/// The third element.
pub fn third(xs: &[u8]) -> u8 {
    xs[2]
}

#[cfg(test)]
mod tests {
    #[test]
    fn third_of_three() {
        assert_eq!(super::third(&[1, 2, 3]), 3);
    }

    #[test]
    fn third_of_two() {
        assert_eq!(super::third(&[1, 2]), 0);
    }
}
