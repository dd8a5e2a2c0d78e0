//! Any bytes through the language front end: a filter that survives the
//! canonical printer unchanged, or a diagnostic whose span lies inside the
//! input and renders. Never a panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use portwall::lang::{check, lex, parse, print};

fuzz_target!(|bytes: &[u8]| {
    let text = match lex::source_from_bytes(bytes) {
        Ok(text) => text,
        Err(d) => {
            assert!(d.span.start < d.span.end && d.span.end <= bytes.len());
            let _ = d.render(&String::from_utf8_lossy(bytes), "filter");
            return;
        }
    };
    let result = parse::parse(text).and_then(|ast| Ok((check::check(&ast)?, ast)));
    match result {
        Err(d) => {
            assert!(d.span.start <= d.span.end && d.span.end <= text.len());
            assert!(text.is_char_boundary(d.span.start) && text.is_char_boundary(d.span.end));
            assert!(d.render(text, "filter").starts_with("error: "));
        }
        Ok((filter, ast)) => {
            let printed = print::print(&ast);
            let again = parse::parse(&printed).expect("the canonical form parses");
            assert_eq!(check::check(&again).expect("and checks"), filter);
            let _ = portwall::compiler::compile(&filter);
        }
    }
});
