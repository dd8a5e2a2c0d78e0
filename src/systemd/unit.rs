//! Unit names: validated like systemctl does, and what they imply for
//! portwall (which drop-in section holds the filter settings, the default
//! filter name).

use super::SystemdError;
use crate::filters::FilterName;
use crate::filters::name::MAX_NAME_LEN;
use crate::lang::ir::Direction;
use std::fmt;
use std::str::FromStr;

/// The longest unit name systemd accepts (`UNIT_NAME_MAX`).
const UNIT_NAME_MAX: usize = 255;

/// The kinds of unit that have a cgroup, hence IP filters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnitKind {
    /// `.service`
    Service,
    /// `.socket`
    Socket,
    /// `.slice`: its filters apply to every unit in it.
    Slice,
    /// `.scope`
    Scope,
    /// `.mount`
    Mount,
    /// `.swap`
    Swap,
}

impl UnitKind {
    fn from_suffix(suffix: &str) -> Option<UnitKind> {
        Some(match suffix {
            "service" => UnitKind::Service,
            "socket" => UnitKind::Socket,
            "slice" => UnitKind::Slice,
            "scope" => UnitKind::Scope,
            "mount" => UnitKind::Mount,
            "swap" => UnitKind::Swap,
            _ => return None,
        })
    }

    /// The section of a unit file (or drop-in) that holds this kind's
    /// resource-control settings, `IPEgressFilterPath=` among them.
    pub fn section(self) -> &'static str {
        match self {
            UnitKind::Service => "Service",
            UnitKind::Socket => "Socket",
            UnitKind::Slice => "Slice",
            UnitKind::Scope => "Scope",
            UnitKind::Mount => "Mount",
            UnitKind::Swap => "Swap",
        }
    }
}

/// Unit types systemd knows that have no cgroup; named so that
/// `portwall protect foo.timer` is refused instead of read as
/// `foo.timer.service`.
const OTHER_KINDS: [&str; 5] = ["target", "timer", "path", "device", "automount"];

/// A unit name portwall can filter, e.g. `nginx.service`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnitName {
    name: String,
}

impl UnitName {
    /// The full name, with its type suffix.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// Its kind, from the suffix.
    pub fn kind(&self) -> UnitKind {
        let suffix = self.name.rsplit_once('.').map_or("", |(_, s)| s);
        UnitKind::from_suffix(suffix).expect("validated on construction")
    }

    /// True for a template such as `getty@.service`, whose drop-ins apply
    /// to every instance.
    pub fn is_template(&self) -> bool {
        self.name.contains("@.")
    }

    /// The default filter base name for this unit: the unit name without
    /// `.service`, other characters bpffs refuses replaced by `_`, short
    /// enough that `-ingress` still fits.
    pub fn default_base(&self) -> FilterName {
        let sanitized = FilterName::sanitized(&self.name);
        let room = MAX_NAME_LEN - "-ingress".len();
        let short: String = sanitized.as_str().chars().take(room).collect();
        short
            .parse()
            .expect("a sanitized name stays valid when cut")
    }
}

/// The name of the filter `base` uses in `direction`: `BASE-egress`.
pub fn filter_name(base: &FilterName, direction: Direction) -> Result<FilterName, String> {
    format!("{base}-{direction}").parse()
}

impl FromStr for UnitName {
    type Err = SystemdError;

    /// Accepts what systemctl accepts for a unit with a cgroup; a name
    /// without a type suffix means a service, as for systemctl.
    fn from_str(raw: &str) -> Result<UnitName, SystemdError> {
        let invalid = |reason: &str| SystemdError::InvalidUnit {
            unit: raw.to_string(),
            reason: reason.to_string(),
        };
        if raw.is_empty() {
            return Err(invalid("it is empty"));
        }
        if raw.contains('/') {
            return Err(invalid(
                "a unit name has no `/` (give the name, e.g. nginx.service, not a path)",
            ));
        }
        if let Some(bad) = raw
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || ":-_.\\@".contains(*c)))
        {
            return Err(invalid(&format!(
                "`{bad}` is not allowed (letters, digits and `:-_.\\@` are); escape other characters with `systemd-escape`"
            )));
        }
        let suffix = raw.rsplit_once('.').map(|(_, s)| s);
        let name = match suffix {
            Some(s) if UnitKind::from_suffix(s).is_some() => raw.to_string(),
            Some(s) if OTHER_KINDS.contains(&s) => {
                return Err(SystemdError::NoCgroupUnit {
                    unit: raw.to_string(),
                });
            }
            _ => format!("{raw}.service"),
        };
        if name.len() > UNIT_NAME_MAX {
            return Err(invalid(&format!(
                "it is longer than {UNIT_NAME_MAX} characters"
            )));
        }
        let prefix = name.rsplit_once('.').map_or("", |(p, _)| p);
        if prefix.is_empty() || prefix.starts_with('@') {
            return Err(invalid("the name before the type suffix is empty"));
        }
        if prefix.matches('@').count() > 1 {
            return Err(invalid("it has more than one `@`"));
        }
        Ok(UnitName { name })
    }
}

impl fmt::Display for UnitName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(s: &str) -> UnitName {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn err(s: &str) -> String {
        s.parse::<UnitName>().unwrap_err().to_string()
    }

    #[test]
    fn names_like_systemctl() {
        assert_eq!(unit("nginx").as_str(), "nginx.service");
        assert_eq!(unit("nginx.service").as_str(), "nginx.service");
        assert_eq!(unit("dbus.socket").kind(), UnitKind::Socket);
        assert_eq!(unit("system.slice").kind().section(), "Slice");
        assert_eq!(unit("foo.bar").as_str(), "foo.bar.service");
        assert!(unit("getty@.service").is_template());
        assert!(!unit("getty@tty1.service").is_template());
        assert_eq!(unit("a\\x2db.service").as_str(), "a\\x2db.service");
    }

    #[test]
    fn refusals_say_why() {
        assert!(err("").contains("empty"), "{}", err(""));
        assert!(err("/etc/x.service").contains("not a path"));
        assert!(err("a b").contains("`systemd-escape`"));
        assert!(err("multi-user.target").contains("only service, socket"));
        assert!(err("@x.service").contains("empty"));
        assert!(err("a@b@c.service").contains("more than one"));
        assert!(err(&"x".repeat(260)).contains("longer than 255"));
    }

    #[test]
    fn default_filter_names() {
        assert_eq!(unit("nginx.service").default_base().as_str(), "nginx");
        assert_eq!(unit("web@8080.service").default_base().as_str(), "web_8080");
        assert_eq!(unit("dbus.socket").default_base().as_str(), "dbus_socket");
        let long = unit(&"x".repeat(240));
        let base = long.default_base();
        let name = filter_name(&base, Direction::Ingress).unwrap();
        assert_eq!(name.as_str().len(), MAX_NAME_LEN);
        assert_eq!(
            filter_name(&base, Direction::Egress)
                .unwrap()
                .as_str()
                .len(),
            MAX_NAME_LEN - 1
        );
    }
}
