//! Filter names: what users call a filter and where it is pinned.

use std::fmt;
use std::str::FromStr;

/// The longest filter name. bpffs allows 255 bytes per name; the pins of
/// a filter's maps append a short suffix.
pub const MAX_NAME_LEN: usize = 200;

/// A filter's name: letters, digits, `-` and `_`. No dot (bpffs refuses
/// names with one, so `nginx.service` must become `nginx`) and no `/`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct FilterName(String);

impl FilterName {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A valid name derived from anything (a unit name, say): characters
    /// that are not allowed become `_`, a `.service` suffix is dropped.
    pub fn sanitized(raw: &str) -> FilterName {
        let base = raw.strip_suffix(".service").unwrap_or(raw);
        let mut name: String = base
            .chars()
            .map(|c| if allowed(c) { c } else { '_' })
            .take(MAX_NAME_LEN)
            .collect();
        if name.is_empty() {
            name.push('_');
        }
        FilterName(name)
    }
}

fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

impl FromStr for FilterName {
    type Err = String;

    fn from_str(s: &str) -> Result<FilterName, String> {
        const RULE: &str = "a filter name is 1 to 200 letters, digits, `-` and `_`";
        if s.is_empty() {
            return Err(format!("empty filter name: {RULE}"));
        }
        if s.len() > MAX_NAME_LEN {
            return Err(format!("filter name too long ({} bytes): {RULE}", s.len()));
        }
        if let Some(bad) = s.chars().find(|c| !allowed(*c)) {
            let hint = if bad == '.' {
                format!(" (bpffs refuses dots: try `{}`)", FilterName::sanitized(s))
            } else {
                String::new()
            };
            return Err(format!(
                "invalid filter name `{s}`: `{bad}` is not allowed; {RULE}{hint}"
            ));
        }
        Ok(FilterName(s.to_string()))
    }
}

impl fmt::Display for FilterName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!("web".parse::<FilterName>().is_ok());
        assert!("web-1_a".parse::<FilterName>().is_ok());
        let err = "nginx.service".parse::<FilterName>().unwrap_err();
        assert!(err.contains("try `nginx`"), "{err}");
        assert!("a/b".parse::<FilterName>().is_err());
        assert!("".parse::<FilterName>().is_err());
        assert!("x".repeat(201).parse::<FilterName>().is_err());
        assert_eq!(FilterName::sanitized("foo@bar.service").as_str(), "foo_bar");
    }
}
