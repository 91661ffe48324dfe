//! Does not compile: a type error.

pub fn answer() -> u32 {
    "forty-two"
}

#[cfg(test)]
mod tests {
    #[test]
    fn answers() {
        assert_eq!(super::answer(), 42);
    }
}
