//! Unit-file text: the loader template and the drop-in of a protected
//! unit. Pure functions of their inputs, so the text is reviewed in tests
//! (and `systemd-analyze verify`ed there) exactly as it is written.

use super::unit::UnitName;
use super::{DEFAULT_BINARY, Layout, loader_unit};
use crate::filters::FilterName;
use crate::lang::ir::Direction;
use std::path::Path;

/// The first line of a template written by `portwall protect`; its
/// presence is how `unprotect` knows it may remove the file again.
pub const AUTO_INSTALLED_MARK: &str = "# Installed by `portwall protect`; `portwall unprotect` removes it with the last protected unit.";

/// Who writes a template, which decides its first comment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TemplateOrigin {
    /// The file shipped in the repository (`systemd/portwall@.service`).
    Shipped,
    /// Installed by `portwall protect` because none was installed.
    AutoInstalled,
}

/// The loader template `portwall@.service` running `binary`.
///
/// `ExecStart=` and `ExecReload=` both run `portwall apply NAME`, which
/// loads the filter if it is missing and replaces it live otherwise, so a
/// start after an unclean stop (pins still there) works, and a reload
/// switches every service running the filter at once.
pub fn template(binary: &str, origin: TemplateOrigin) -> String {
    let first = match origin {
        TemplateOrigin::Shipped => format!(
            "# Shipped with portwall. Install the binary at {DEFAULT_BINARY} and this\n\
             # file in /etc/systemd/system, or let `portwall protect` install a copy\n\
             # that runs the portwall binary it was started from."
        ),
        TemplateOrigin::AutoInstalled => AUTO_INSTALLED_MARK.to_string(),
    };
    format!(
        "{first}
#
# portwall@NAME loads the filter configured in /etc/portwall/NAME.conf and
# pins it at /sys/fs/bpf/portwall/NAME. Services use it with
#   Requires=portwall@NAME.service
#   After=portwall@NAME.service
#   IPEgressFilterPath=/sys/fs/bpf/portwall/NAME    (or IPIngressFilterPath=)
# which is what `portwall protect UNIT` writes. After editing the config,
# `systemctl reload portwall@NAME` switches every service running the
# filter to the new one live; stopping the unit unloads the filter (and
# stops the services that require it).
[Unit]
Description=portwall filter %i
DefaultDependencies=no
After=local-fs.target
Before=shutdown.target
Conflicts=shutdown.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart={binary} apply %i
ExecReload={binary} apply %i
ExecStop={binary} unload %i
# Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK.
LimitMEMLOCK=infinity

[Install]
WantedBy=multi-user.target
"
    )
}

/// `path` as a unit file's command: quoted when it has blanks or quotes,
/// with the specifier and variable characters (`%`, `$`) doubled. `None`
/// when it is not UTF-8 or holds control characters, which unit files
/// cannot carry.
pub fn exec_path(path: &Path) -> Option<String> {
    let s = path.to_str()?;
    if s.is_empty() || !s.starts_with('/') || s.chars().any(|c| c.is_control()) {
        return None;
    }
    let escaped = s.replace('%', "%%").replace('$', "$$");
    if escaped.contains([' ', '\t', '"', '\'', '\\', ';']) {
        Some(format!(
            "\"{}\"",
            escaped.replace('\\', "\\\\").replace('"', "\\\"")
        ))
    } else {
        Some(escaped)
    }
}

/// The filters a drop-in gives a unit: for each, its direction and name.
pub type UnitFilters = Vec<(Direction, FilterName)>;

/// The drop-in `portwall protect` writes for `unit`: a dependency on each
/// filter's loader (so the pin exists before systemd attaches it, and the
/// unit does not start unfiltered if loading fails) and the pins.
pub fn drop_in(layout: &Layout, unit: &UnitName, filters: &[(Direction, FilterName)]) -> String {
    let mut out = format!(
        "# Written by `portwall protect {unit}`; `portwall unprotect {unit}` removes it.\n"
    );
    for (_, name) in filters {
        out.push_str(&format!(
            "# Filter `{name}`: edit {}, then: systemctl reload {}\n",
            layout.config_path(name).display(),
            loader_unit(name)
        ));
    }
    out.push_str("[Unit]\n");
    for (_, name) in filters {
        out.push_str(&format!("Requires={}\n", loader_unit(name)));
    }
    for (_, name) in filters {
        out.push_str(&format!("After={}\n", loader_unit(name)));
    }
    out.push_str(&format!("\n[{}]\n", unit.kind().section()));
    for (direction, name) in filters {
        let key = match direction {
            Direction::Ingress => "IPIngressFilterPath",
            Direction::Egress => "IPEgressFilterPath",
        };
        out.push_str(&format!("{key}={}\n", layout.pin_path(name).display()));
    }
    out
}

/// The filters named in a drop-in: every `IPIngressFilterPath=` or
/// `IPEgressFilterPath=` that points into portwall's pin directory.
pub fn parse_drop_in(layout: &Layout, text: &str) -> UnitFilters {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((key, value)) = line.trim().split_once('=') else {
            continue;
        };
        let direction = match key.trim() {
            "IPIngressFilterPath" => Direction::Ingress,
            "IPEgressFilterPath" => Direction::Egress,
            _ => continue,
        };
        let path = Path::new(value.trim());
        if path.parent() != Some(layout.pin_dir.as_path()) {
            continue;
        }
        if let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse::<FilterName>().ok())
        {
            out.push((direction, name));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> FilterName {
        s.parse().unwrap()
    }

    #[test]
    fn the_shipped_template_is_the_generated_one() {
        let shipped = include_str!("../../systemd/portwall@.service");
        assert_eq!(shipped, template(DEFAULT_BINARY, TemplateOrigin::Shipped));
    }

    #[test]
    fn auto_installed_templates_are_marked() {
        let t = template("/opt/pw/portwall", TemplateOrigin::AutoInstalled);
        assert!(t.starts_with(AUTO_INSTALLED_MARK));
        assert!(t.contains("\nExecStart=/opt/pw/portwall apply %i\n"));
        assert!(t.contains("\nExecReload=/opt/pw/portwall apply %i\n"));
        assert!(t.contains("\nExecStop=/opt/pw/portwall unload %i\n"));
    }

    #[test]
    fn exec_paths_are_escaped() {
        assert_eq!(
            exec_path(Path::new("/usr/bin/portwall")).unwrap(),
            "/usr/bin/portwall"
        );
        assert_eq!(
            exec_path(Path::new("/opt/my tools/100%/portwall")).unwrap(),
            "\"/opt/my tools/100%%/portwall\""
        );
        assert_eq!(exec_path(Path::new("/a$b")).unwrap(), "/a$$b");
        assert_eq!(exec_path(Path::new("relative")), None);
        assert_eq!(exec_path(Path::new("/a\nb")), None);
    }

    #[test]
    fn drop_in_text_and_back() {
        let layout = Layout::system();
        let unit: UnitName = "web.service".parse().unwrap();
        let filters = vec![
            (Direction::Ingress, name("web-ingress")),
            (Direction::Egress, name("web-egress")),
        ];
        let text = drop_in(&layout, &unit, &filters);
        assert_eq!(
            text,
            "# Written by `portwall protect web.service`; `portwall unprotect web.service` removes it.\n\
             # Filter `web-ingress`: edit /etc/portwall/web-ingress.conf, then: systemctl reload portwall@web-ingress.service\n\
             # Filter `web-egress`: edit /etc/portwall/web-egress.conf, then: systemctl reload portwall@web-egress.service\n\
             [Unit]\n\
             Requires=portwall@web-ingress.service\n\
             Requires=portwall@web-egress.service\n\
             After=portwall@web-ingress.service\n\
             After=portwall@web-egress.service\n\
             \n\
             [Service]\n\
             IPIngressFilterPath=/sys/fs/bpf/portwall/web-ingress\n\
             IPEgressFilterPath=/sys/fs/bpf/portwall/web-egress\n"
        );
        assert_eq!(parse_drop_in(&layout, &text), filters);
        let socket: UnitName = "dns.socket".parse().unwrap();
        assert!(drop_in(&layout, &socket, &filters[1..]).contains("\n[Socket]\nIPEgress"));
    }

    #[test]
    fn parsing_ignores_foreign_paths() {
        let layout = Layout::system();
        let text = "IPEgressFilterPath=/sys/fs/bpf/other\n\
                    IPEgressFilterPath=/sys/fs/bpf/portwall/a.b\n\
                    IPEgressFilterPath=\n\
                    IPIngressFilterPath = /sys/fs/bpf/portwall/ok\n";
        assert_eq!(
            parse_drop_in(&layout, text),
            vec![(Direction::Ingress, name("ok"))]
        );
    }
}
