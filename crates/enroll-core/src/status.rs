//! Request statuses and the one function that changes them.
//!
//! ```text
//!  Pending ──new request from the same machine──▶ Cancelled
//!    │ ╲ reject (with reason) ─▶ Rejected
//!    │ approve (certificate is issued now)
//!    ▼
//!  Approved ──client installs──▶ Installed     (own workstation / server)
//!    │      ──client downloads─▶ Downloaded    (external server request)
//!    └── Approved / Installed / Downloaded ──revoke──▶ Revoked
//! ```

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

use crate::ids::OrgCode;
use crate::role::{Actor, Role};

/// Where a request stands. `Rejected`, `Cancelled` and `Revoked` are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RequestStatus {
    Pending,
    Approved,
    Rejected,
    Cancelled,
    Installed,
    Downloaded,
    Revoked,
}

impl RequestStatus {
    pub const ALL: [RequestStatus; 7] = [
        RequestStatus::Pending,
        RequestStatus::Approved,
        RequestStatus::Rejected,
        RequestStatus::Cancelled,
        RequestStatus::Installed,
        RequestStatus::Downloaded,
        RequestStatus::Revoked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RequestStatus::Pending => "Pending",
            RequestStatus::Approved => "Approved",
            RequestStatus::Rejected => "Rejected",
            RequestStatus::Cancelled => "Cancelled",
            RequestStatus::Installed => "Installed",
            RequestStatus::Downloaded => "Downloaded",
            RequestStatus::Revoked => "Revoked",
        }
    }

    /// Whether a certificate exists for a request in this status.
    pub fn has_certificate(self) -> bool {
        matches!(
            self,
            RequestStatus::Approved
                | RequestStatus::Installed
                | RequestStatus::Downloaded
                | RequestStatus::Revoked
        )
    }
}

impl fmt::Display for RequestStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// The status name was not one of [`RequestStatus::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown status {0:?}: use Pending, Approved, Rejected, Cancelled, Installed, Downloaded or Revoked"
)]
pub struct UnknownStatus(pub String);

impl FromStr for RequestStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RequestStatus::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

/// What the request is for; decides who may approve it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestKind {
    /// The client's own workstation (OU=Workstation).
    Workstation,
    /// The client's own server (OU=Server): central approval only.
    Server,
    /// Another server of the organization, from an external CSR: central
    /// approval only.
    External,
    /// A mobile device (through the standard mobile enrollment paths).
    Mobile,
}

impl RequestKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestKind::Workstation => "workstation",
            RequestKind::Server => "server",
            RequestKind::External => "external",
            RequestKind::Mobile => "mobile",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            RequestKind::Workstation,
            RequestKind::Server,
            RequestKind::External,
            RequestKind::Mobile,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }

    /// Server and external requests need the higher level of validation
    /// that only the central administrator gives.
    pub fn needs_central_approval(self) -> bool {
        matches!(self, RequestKind::Server | RequestKind::External)
    }

    /// The certificate's organization unit.
    pub fn organization_unit(self) -> &'static str {
        match self {
            RequestKind::Workstation => "Workstation",
            RequestKind::Server | RequestKind::External => "Server",
            RequestKind::Mobile => "Mobile",
        }
    }
}

/// Where the certificate goes on the client side (the package fixes it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnrollmentType {
    /// A system store every user of the machine can use.
    Machine,
    /// The invoking user's own store.
    User,
    /// Not installed: saved as a file for another server's operator.
    External,
}

impl EnrollmentType {
    pub fn as_str(self) -> &'static str {
        match self {
            EnrollmentType::Machine => "machine",
            EnrollmentType::User => "user",
            EnrollmentType::External => "external",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            EnrollmentType::Machine,
            EnrollmentType::User,
            EnrollmentType::External,
        ]
        .into_iter()
        .find(|t| t.as_str().eq_ignore_ascii_case(s))
    }
}

/// Something that can happen to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Approve,
    Reject,
    /// The service cancels a pending request when the same machine sends a
    /// new one; the client's new submission is the cause.
    Supersede,
    /// The client installed the certificate in its store.
    Install,
    /// The client saved an external certificate to its environment folder.
    Download,
    Revoke,
}

impl Action {
    pub const ALL: [Action; 6] = [
        Action::Approve,
        Action::Reject,
        Action::Supersede,
        Action::Install,
        Action::Download,
        Action::Revoke,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Approve => "approve",
            Action::Reject => "reject",
            Action::Supersede => "cancel",
            Action::Install => "install",
            Action::Download => "download",
            Action::Revoke => "revoke",
        }
    }
}

/// Why a transition was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// The actor may not do this to this request, whatever its status.
    #[error("{actor} may not {action} this request: {why}")]
    Forbidden {
        actor: String,
        action: &'static str,
        why: &'static str,
    },
    /// The request is not in a status this action applies to.
    #[error("a request that is {from} cannot be {}{}", past(action), hint(*from, action))]
    InvalidStatus {
        from: RequestStatus,
        action: &'static str,
    },
}

/// What the person probably wanted instead.
fn hint(from: RequestStatus, action: &str) -> &'static str {
    match (from, action) {
        (RequestStatus::Pending, "revoke") => "; it has no certificate yet: reject it instead",
        (
            RequestStatus::Approved | RequestStatus::Installed | RequestStatus::Downloaded,
            "reject",
        ) => "; its certificate is issued: revoke it instead",
        (RequestStatus::Revoked, "revoke") => "; it is revoked already",
        _ => "",
    }
}

fn past(action: &str) -> String {
    match action {
        "approve" => "approved".into(),
        "reject" => "rejected".into(),
        "cancel" => "cancelled".into(),
        "install" => "installed".into(),
        "download" => "downloaded".into(),
        "revoke" => "revoked".into(),
        other => format!("{other}ed"),
    }
}

/// Decides one status change: from `from`, `actor` wants `action` on a
/// request of `kind` belonging to organization `org`. Authorization comes
/// first so that a refused actor learns nothing about the request's status.
pub fn transition(
    from: RequestStatus,
    action: Action,
    actor: &Actor,
    kind: RequestKind,
    org: &OrgCode,
) -> Result<RequestStatus, TransitionError> {
    authorize(action, actor, kind, org)?;
    use RequestStatus::*;
    let to = match (action, from) {
        (Action::Approve, Pending) => Approved,
        (Action::Reject, Pending) => Rejected,
        (Action::Supersede, Pending) => Cancelled,
        (Action::Install, Approved) => Installed,
        (Action::Download, Approved) => Downloaded,
        (Action::Revoke, Approved | Installed | Downloaded) => Revoked,
        (action, from) => {
            return Err(TransitionError::InvalidStatus {
                from,
                action: action.as_str(),
            });
        }
    };
    Ok(to)
}

fn authorize(
    action: Action,
    actor: &Actor,
    kind: RequestKind,
    org: &OrgCode,
) -> Result<(), TransitionError> {
    let deny = |why| {
        Err(TransitionError::Forbidden {
            actor: actor.to_string(),
            action: action.as_str(),
            why,
        })
    };
    match (&actor.role, action) {
        (Role::CentralAdmin, Action::Approve | Action::Reject | Action::Revoke) => Ok(()),
        (Role::CentralAdmin, _) => deny("only the client that made the request does this"),
        (Role::OrgManager(own), Action::Approve | Action::Reject | Action::Revoke) => {
            if own != org {
                deny("the request belongs to another organization")
            } else if kind.needs_central_approval() {
                deny("server and external requests are decided by the central administrator")
            } else {
                Ok(())
            }
        }
        (Role::OrgManager(_), _) => deny("only the client that made the request does this"),
        (Role::Client(own), Action::Supersede | Action::Install | Action::Download) => {
            if own != org {
                deny("the request belongs to another organization")
            } else if action == Action::Install && kind == RequestKind::External {
                deny("an external certificate is downloaded, not installed")
            } else if action == Action::Download && kind != RequestKind::External {
                deny("a certificate for this machine is installed, not downloaded")
            } else {
                Ok(())
            }
        }
        (Role::Client(_), _) => deny("a client cannot decide or revoke requests"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RequestStatus::*;

    fn org(s: &str) -> OrgCode {
        OrgCode::parse(s).expect("valid org")
    }

    /// The expected outcome for a status × action pair when the actor is
    /// allowed: `Some(to)` or `None` for an invalid status.
    fn expected_status(from: RequestStatus, action: Action) -> Option<RequestStatus> {
        match (action, from) {
            (Action::Approve, Pending) => Some(Approved),
            (Action::Reject, Pending) => Some(Rejected),
            (Action::Supersede, Pending) => Some(Cancelled),
            (Action::Install, Approved) => Some(Installed),
            (Action::Download, Approved) => Some(Downloaded),
            (Action::Revoke, Approved | Installed | Downloaded) => Some(Revoked),
            _ => None,
        }
    }

    /// Whether `role` may perform `action` on a request of `kind` owned by
    /// organization AAA, written as a table independent of `authorize`.
    fn allowed(role: &Role, action: Action, kind: RequestKind) -> bool {
        use Action::*;
        use RequestKind::*;
        let own = |r: &OrgCode| r.as_str() == "AAA";
        match role {
            Role::CentralAdmin => matches!(action, Approve | Reject | Revoke),
            Role::OrgManager(o) => {
                own(o)
                    && matches!(action, Approve | Reject | Revoke)
                    && matches!(kind, Workstation | Mobile)
            }
            Role::Client(o) => {
                own(o)
                    && match action {
                        Supersede => true,
                        Install => kind != External,
                        Download => kind == External,
                        _ => false,
                    }
            }
        }
    }

    #[test]
    fn full_transition_table() {
        let roles = [
            Role::CentralAdmin,
            Role::OrgManager(org("AAA")),
            Role::OrgManager(org("BBB")),
            Role::Client(org("AAA")),
            Role::Client(org("BBB")),
        ];
        let kinds = [
            RequestKind::Workstation,
            RequestKind::Server,
            RequestKind::External,
            RequestKind::Mobile,
        ];
        let mut cases = 0;
        let mut allowed_moves = 0;
        for from in RequestStatus::ALL {
            for action in Action::ALL {
                for role in &roles {
                    for kind in kinds {
                        let actor = Actor::new(role.clone(), "t");
                        let got = transition(from, action, &actor, kind, &org("AAA"));
                        let want_allowed = allowed(role, action, kind);
                        match (want_allowed, expected_status(from, action), got) {
                            (false, _, Err(TransitionError::Forbidden { .. })) => {}
                            (true, None, Err(TransitionError::InvalidStatus { .. })) => {}
                            (true, Some(to), Ok(got)) if got == to => allowed_moves += 1,
                            (w, e, g) => panic!(
                                "{from} × {action:?} × {role:?} × {kind:?}: \
                                 allowed={w} expected={e:?} got={g:?}"
                            ),
                        }
                        cases += 1;
                    }
                }
            }
        }
        assert_eq!(cases, 7 * 6 * 5 * 4);
        // Only transitions that exist in the diagram are ever allowed.
        assert!(allowed_moves > 0);
    }

    #[test]
    fn final_statuses_accept_nothing() {
        let admin = Actor::new(Role::CentralAdmin, "admin");
        for from in [Rejected, Cancelled, Revoked] {
            for action in Action::ALL {
                let r = transition(from, action, &admin, RequestKind::Workstation, &org("AAA"));
                assert!(r.is_err(), "{from} accepted {action:?}");
            }
        }
    }

    #[test]
    fn manager_refusal_names_the_reason() {
        let m = Actor::new(Role::OrgManager(org("AAA")), "alice");
        let e = transition(
            Pending,
            Action::Approve,
            &m,
            RequestKind::Server,
            &org("AAA"),
        )
        .expect_err("server requests need the central administrator");
        assert!(e.to_string().contains("central administrator"), "{e}");
        let e = transition(
            Pending,
            Action::Approve,
            &m,
            RequestKind::Workstation,
            &org("BBB"),
        )
        .expect_err("other organization");
        assert!(e.to_string().contains("another organization"), "{e}");
    }

    #[test]
    fn refusals_read_as_english() {
        let admin = Actor::new(Role::CentralAdmin, "admin");
        let e = transition(
            Installed,
            Action::Reject,
            &admin,
            RequestKind::Workstation,
            &org("AAA"),
        )
        .expect_err("installed");
        assert_eq!(
            e.to_string(),
            "a request that is Installed cannot be rejected; its certificate is issued: revoke it instead"
        );
        let e = transition(
            Pending,
            Action::Revoke,
            &admin,
            RequestKind::Workstation,
            &org("AAA"),
        )
        .expect_err("pending");
        assert_eq!(
            e.to_string(),
            "a request that is Pending cannot be revoked; it has no certificate yet: reject it instead"
        );
    }

    #[test]
    fn status_names_round_trip() {
        for s in RequestStatus::ALL {
            assert_eq!(s.as_str().parse::<RequestStatus>(), Ok(s));
        }
        assert!("approved".parse::<RequestStatus>().is_ok());
        assert!("done".parse::<RequestStatus>().is_err());
    }
}
