//! A test that takes the whole test binary down with it.

/// Gives up, for real.
pub fn give_up() {
    std::process::abort();
}

#[cfg(test)]
mod tests {
    #[test]
    fn gives_up() {
        super::give_up();
    }
}
