//! Diagnostics of the checker, as the user sees them (exact text).

use portwall::lang::{check, parse};

fn error(source: &str) -> String {
    let ast = parse::parse(source).expect("parses");
    let err = check::check(&ast).expect_err("is rejected");
    err.render(source, "filter")
}

#[test]
fn unknown_name_suggests_the_closest_variable() {
    assert_eq!(
        error("tcp && dst_prot == 80"),
        "error: unknown name `dst_prot`\n --> filter:1:8\n  |\n1 | tcp && dst_prot == 80\n  |        ^^^^^^^^\n  = help: did you mean `dst_port`?\n"
    );
    assert!(error("TCP").contains("did you mean `tcp`?"));
    assert!(
        error("ipv4").contains("did you mean `ip`?")
            || error("ipv4").contains("did you mean `ipv6`?")
    );
}

#[test]
fn unknown_name_far_from_any_lists_the_variables() {
    assert_eq!(
        error("x\n  && bandwidth > 5"),
        "error: unknown name `x`\n --> filter:1:1\n  |\n1 | x\n  | ^\n  = help: the variables are `ip`, `ipv6`, `tcp`, `udp`, `icmp`, `dst_port`, `src_port`\n"
    );
    let far = error("tcp && bandwidth > 5");
    assert!(far.contains("unknown name `bandwidth`"), "{far}");
    assert!(far.contains("1:8"), "{far}");
}

#[test]
fn common_mistakes_get_specific_help() {
    assert!(error("true").contains("write 1 for true"));
    assert!(error("tcp && false").contains("write 0 for false"));
    assert!(error("port == 80").contains("write `dst_port` or `src_port`"));
}

#[test]
fn constant_zero_divisors_are_rejected_where_they_are() {
    assert_eq!(
        error("dst_port / (3 - 3)"),
        "error: division by zero: this divisor is always 0\n --> filter:1:12\n  |\n1 | dst_port / (3 - 3)\n  |            ^^^^^^^\n"
    );
    assert!(error("src_port % 0").contains("remainder by zero"));
    assert!(error("src_port % (1 ? 0 : 5)").contains("remainder by zero"));
    // A divisor that depends on the packet is fine, even if it can be 0.
    assert!(check::check(&parse::parse("src_port / (dst_port - 80)").unwrap()).is_ok());
}

#[test]
fn needs_follow_the_variables_mentioned() {
    use portwall::lang::ir::Need;
    let need = |s: &str| check::check(&parse::parse(s).unwrap()).unwrap().need;
    assert_eq!(need("1"), Need::NOTHING);
    assert_eq!(need("ip || ipv6"), Need::NOTHING);
    assert_eq!(need("ip && tcp"), Need::NETWORK);
    assert_eq!(need("icmp"), Need::NETWORK);
    assert_eq!(need("udp && src_port == 5"), Need::PORTS);
    // Mentioned counts, even where simplification removes it.
    assert_eq!(need("0 && dst_port == 1"), Need::PORTS);
}
