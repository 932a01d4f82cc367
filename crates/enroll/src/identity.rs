//! The machine's identity and the client details, computed the same way
//! on every run.
//!
//! Workstation common name = MAC (12 hex) + processor id (16 hex) +
//! network-interface id (32 hex), upper case:
//! - MAC: the first physical network interface by name (virtual
//!   interfaces, loopback and all-zero addresses are skipped; if the
//!   machine has no physical one, the first virtual one is used).
//! - Processor id: on x86, CPUID leaf 1 as Windows reports it, EDX then
//!   EAX, 8 hex digits each. On other processors: the first 16 hex digits
//!   of the SHA-256 of the model name lines of `/proc/cpuinfo` (stable for
//!   a machine, documented here as our equivalent).
//! - Network-interface id: `/etc/machine-id` (or `/var/lib/dbus/machine-id`).

use std::path::Path;

use anyhow::{Context, Result, bail};

#[derive(Debug, Clone, serde::Serialize)]
pub struct Identity {
    pub mac: String,
    pub processor_id: String,
    pub nic_id: String,
    pub fqdn: String,
    pub os_version: String,
    pub os_type: String,
    pub requester: String,
}

impl Identity {
    pub fn hardware_id(&self) -> String {
        format!("{}{}{}", self.mac, self.processor_id, self.nic_id)
    }

    pub fn detect() -> Result<Identity> {
        Ok(Identity {
            mac: mac_address()?,
            processor_id: processor_id(),
            nic_id: machine_id()?,
            fqdn: fqdn(),
            os_version: os_version(),
            os_type: if cfg!(target_pointer_width = "64") {
                "64-bit".into()
            } else {
                "32-bit".into()
            },
            requester: requester(),
        })
    }
}

fn read_trim(p: impl AsRef<Path>) -> Option<String> {
    std::fs::read_to_string(p).ok().map(|s| s.trim().to_owned())
}

fn mac_address() -> Result<String> {
    let base = Path::new("/sys/class/net");
    let mut physical = Vec::new();
    let mut virtual_ = Vec::new();
    let entries =
        std::fs::read_dir(base).context("cannot list network interfaces in /sys/class/net")?;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name == "lo" {
            continue;
        }
        let Some(addr) = read_trim(e.path().join("address")) else {
            continue;
        };
        let hex: String = addr.chars().filter(|c| c.is_ascii_hexdigit()).collect();
        if hex.len() != 12 || hex.chars().all(|c| c == '0') {
            continue;
        }
        let is_virtual = std::fs::canonicalize(e.path())
            .map(|p| p.starts_with("/sys/devices/virtual"))
            .unwrap_or(true);
        let entry = (name, hex.to_ascii_uppercase());
        if is_virtual {
            virtual_.push(entry);
        } else {
            physical.push(entry);
        }
    }
    physical.sort();
    virtual_.sort();
    match physical.into_iter().chain(virtual_).next() {
        Some((_, mac)) => Ok(mac),
        None => bail!(
            "this machine has no network interface with a MAC address; the workstation identity needs one"
        ),
    }
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
fn processor_id() -> String {
    let r = raw_cpuid::cpuid!(1);
    format!("{:08X}{:08X}", r.edx, r.eax)
}

#[cfg(not(any(target_arch = "x86", target_arch = "x86_64")))]
fn processor_id() -> String {
    let text = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model: String = text
        .lines()
        .filter(|l| {
            let k = l.split(':').next().unwrap_or("").trim();
            matches!(
                k,
                "CPU implementer" | "CPU architecture" | "CPU variant" | "CPU part" | "model name"
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, model.as_bytes());
    digest
        .as_ref()
        .iter()
        .take(8)
        .map(|b| format!("{b:02X}"))
        .collect()
}

fn machine_id() -> Result<String> {
    for p in ["/etc/machine-id", "/var/lib/dbus/machine-id"] {
        if let Some(id) = read_trim(p)
            && id.len() == 32
            && id.chars().all(|c| c.is_ascii_hexdigit())
        {
            return Ok(id.to_ascii_uppercase());
        }
    }
    bail!(
        "this machine has no machine id (/etc/machine-id); create one with \
         `systemd-machine-id-setup` or `dbus-uuidgen --ensure=/etc/machine-id`"
    )
}

fn fqdn() -> String {
    let short = read_trim("/proc/sys/kernel/hostname")
        .or_else(|| read_trim("/etc/hostname"))
        .unwrap_or_else(|| "localhost".into());
    if short.contains('.') {
        return short;
    }
    // `hostname -f` asks the resolver for the canonical name, as
    // getaddrinfo(AI_CANONNAME) would.
    std::process::Command::new("hostname")
        .arg("-f")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or(short)
}

fn os_version() -> String {
    let pretty = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_owned())
        })
        .unwrap_or_else(|| std::env::consts::OS.to_owned());
    match read_trim("/proc/sys/kernel/osrelease") {
        Some(k) => format!("{pretty} (kernel {k})"),
        None => pretty,
    }
}

/// The user login: under sudo, the person who ran sudo; otherwise the
/// environment's, else the name of our uid in /etc/passwd.
pub fn requester() -> String {
    ["SUDO_USER", "USER", "LOGNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .or_else(login_of_uid)
        .unwrap_or_else(|| "unknown".into())
}

fn login_of_uid() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .to_owned();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let _pw = f.next()?;
        (f.next()? == uid).then(|| name.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_has_the_documented_shape_and_is_stable() {
        let a = Identity::detect().expect("identity");
        let b = Identity::detect().expect("identity");
        assert_eq!(a.hardware_id(), b.hardware_id());
        let hw = a.hardware_id();
        assert_eq!(hw.len(), 60, "{hw}");
        assert!(
            hw.chars()
                .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
        );
        assert_eq!(a.mac.len(), 12);
        assert_eq!(a.processor_id.len(), 16);
        assert_eq!(a.nic_id.len(), 32);
        // The policy the server applies accepts what the client computes.
        assert!(enroll_core::subject::check_hardware_identity(&hw).is_ok());
    }
}
