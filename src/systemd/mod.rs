//! portwall for systemd services: the loader unit, filter configs,
//! drop-ins, and the `protect`/`unprotect` procedure.
//!
//! How the pieces fit:
//! - A filter NAME is described by `/etc/portwall/NAME.conf` ([`config`]).
//! - The template `portwall@.service` ([`units::template`]) loads it:
//!   instance NAME runs `portwall apply NAME`, which compiles the config
//!   and pins the filter at `/sys/fs/bpf/portwall/NAME`; `ExecReload=`
//!   runs the same command, which replaces the filter live for every
//!   cgroup running it; `ExecStop=` unloads it.
//! - A protected unit gets one drop-in, `UNIT.d/90-portwall.conf`
//!   ([`units::drop_in`]): `Requires=`/`After=` on each loader instance and
//!   `IPIngressFilterPath=`/`IPEgressFilterPath=` on each pin. systemd
//!   attaches the pins to the unit's cgroup when it starts the unit and
//!   again at every `daemon-reload`, so a running unit picks filters up
//!   (and drops removed ones) without a restart.
//! - One filter has one direction, so a unit filtered both ways uses two
//!   filters, `BASE-ingress` and `BASE-egress` ([`protect`]).
//!
//! Each module has one job: [`unit`](mod@unit) (unit names), [`config`] (the config
//! format), [`units`] (unit-file text, pure), [`systemctl`] (running
//! systemd's tools), [`cgroup`] (unit to cgroup), [`protect`] (what
//! `protect`/`unprotect` change, planned purely, then applied).
#![warn(missing_docs)]

pub mod cgroup;
pub mod config;
mod error;
pub mod protect;
pub mod systemctl;
pub mod unit;
pub mod units;

pub use cgroup::unit_cgroup;
pub use config::{ConfigError, FilterConfig};
pub use error::SystemdError;
pub use unit::UnitName;

use crate::filters::FilterName;
use std::path::{Path, PathBuf};

/// Where portwall's systemd integration keeps its files.
///
/// [`Layout::system`] is the layout the shipped unit and every command
/// use; the fields are public so tests can plan against a scratch tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Where drop-ins and the auto-installed template are written.
    pub unit_dir: PathBuf,
    /// Where filter configs live (`NAME.conf`).
    pub config_dir: PathBuf,
    /// Where filters are pinned (`<bpffs>/portwall`).
    pub pin_dir: PathBuf,
    /// Where an installed `portwall@.service` is looked for, in systemd's
    /// order of precedence.
    pub template_dirs: Vec<PathBuf>,
}

/// The file name of portwall's drop-in in `UNIT.d/`. The `90-` prefix
/// sorts it after most administrators' drop-ins, so an earlier one that
/// resets `IPEgressFilterPath=` cannot silently remove portwall's filter.
pub const DROP_IN_NAME: &str = "90-portwall.conf";

/// The loader template's unit name.
pub const TEMPLATE_NAME: &str = "portwall@.service";

/// Where the shipped template expects the binary (`make install`-style
/// installs and the README put it there).
pub const DEFAULT_BINARY: &str = "/usr/local/bin/portwall";

impl Layout {
    /// The real system: `/etc/systemd/system`, `/etc/portwall`,
    /// `/sys/fs/bpf/portwall`.
    pub fn system() -> Layout {
        Layout {
            unit_dir: "/etc/systemd/system".into(),
            config_dir: "/etc/portwall".into(),
            pin_dir: Path::new(crate::filters::pins::DEFAULT_BPFFS).join("portwall"),
            template_dirs: [
                "/etc/systemd/system",
                "/run/systemd/system",
                "/usr/local/lib/systemd/system",
                "/usr/lib/systemd/system",
                "/lib/systemd/system",
            ]
            .iter()
            .map(PathBuf::from)
            .collect(),
        }
    }

    /// The config of filter `name`.
    pub fn config_path(&self, name: &FilterName) -> PathBuf {
        self.config_dir.join(format!("{name}.conf"))
    }

    /// Where filter `name` is pinned (what systemd is given).
    pub fn pin_path(&self, name: &FilterName) -> PathBuf {
        self.pin_dir.join(name.as_str())
    }

    /// The directory of `unit`'s drop-ins.
    pub fn drop_in_dir(&self, unit: &UnitName) -> PathBuf {
        self.unit_dir.join(format!("{unit}.d"))
    }

    /// portwall's drop-in for `unit`.
    pub fn drop_in_path(&self, unit: &UnitName) -> PathBuf {
        self.drop_in_dir(unit).join(DROP_IN_NAME)
    }

    /// Where `protect` installs the template when none is installed.
    pub fn template_path(&self) -> PathBuf {
        self.unit_dir.join(TEMPLATE_NAME)
    }
}

/// The loader instance of filter `name`: `portwall@NAME.service`.
pub fn loader_unit(name: &FilterName) -> String {
    // Filter names are letters, digits, `-` and `_`, all of which systemd
    // keeps as they are in an instance name, so `%i` is the filter name.
    format!("portwall@{name}.service")
}
