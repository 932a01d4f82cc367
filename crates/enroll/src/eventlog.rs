//! The local event log, `PKGDIR/logs/enroll.log`: one line per action, for
//! support. Never a secret: only ids, statuses and outcomes.

use std::io::Write;
use std::path::PathBuf;

#[derive(Debug)]
pub struct EventLog {
    path: PathBuf,
    env: String,
}

impl EventLog {
    pub fn new(package_root: &std::path::Path, env: &str) -> EventLog {
        EventLog {
            path: package_root.join("logs").join("enroll.log"),
            env: env.to_owned(),
        }
    }

    /// Appends a line. A package folder the user cannot write to must not
    /// stop the action itself: the failure is said once on stderr.
    pub fn record(&self, action: &str, outcome: &str) {
        let now = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let user = crate::identity::requester();
        let clean: String = outcome
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let line = format!(
            "{now} env={} user={user} action={action} {clean}\n",
            self.env
        );
        let result = self
            .path
            .parent()
            .map(std::fs::create_dir_all)
            .transpose()
            .and_then(|_| {
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.path)
            })
            .and_then(|mut f| f.write_all(line.as_bytes()));
        if let Err(e) = result {
            eprintln!(
                "warning: cannot write the event log {}: {e}",
                self.path.display()
            );
        }
    }
}
