use failures::add;

#[test]
fn sums_are_positive() {
    let total = add(2, 5);
    assert!(total > 0, "expected a positive sum, got {}", total);
}

#[test]
fn commutes_for_equal() {
    assert_eq!(add(3, 3), add(3, 3));
}

#[test]
fn returns_result() -> Result<(), String> {
    Err(String::from("the result was an error"))
}
