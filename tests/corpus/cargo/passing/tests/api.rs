use passing::square;

#[test]
fn square_of_two() {
    assert_eq!(square(2), 4);
}

#[test]
fn square_is_even_for_even() {
    for n in (0..20).step_by(2) {
        assert_eq!(square(n) % 2, 0);
    }
}

#[test]
fn square_never_negative() {
    assert!((-10..10).all(|n| square(n) >= 0));
}
