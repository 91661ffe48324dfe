//! A tiny crate with many tests.

/// Squares a number.
///
/// ```
/// assert_eq!(passing::square(3), 9);
/// ```
pub fn square(n: i64) -> i64 {
    n * n
}

#[cfg(test)]
mod tests {
    use super::square;

    macro_rules! square_tests {
        ($($name:ident: $n:expr => $want:expr,)*) => {
            $(
                #[test]
                fn $name() {
                    assert_eq!(square($n), $want);
                }
            )*
        };
    }

    square_tests! {
        sq_0: 0 => 0, sq_1: 1 => 1, sq_2: 2 => 4, sq_3: 3 => 9, sq_4: 4 => 16,
        sq_5: 5 => 25, sq_6: 6 => 36, sq_7: 7 => 49, sq_8: 8 => 64, sq_9: 9 => 81,
        sq_10: 10 => 100, sq_11: 11 => 121, sq_12: 12 => 144, sq_13: 13 => 169,
        sq_14: 14 => 196, sq_15: 15 => 225, sq_16: 16 => 256, sq_17: 17 => 289,
        sq_18: 18 => 324, sq_19: 19 => 361, sq_neg: -4 => 16,
    }

    #[test]
    #[ignore]
    fn slow_one() {}

    #[test]
    #[should_panic(expected = "overflow")]
    fn overflows() {
        square(i64::MAX);
    }
}
