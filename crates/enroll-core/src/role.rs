//! Who acts: every use case receives an [`Actor`], and authorization is
//! decided from it in [`crate::status::transition`].

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::ids::OrgCode;

/// The role an actor holds. Organization managers and clients are bound to
/// one organization; the central administrator to none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "role", content = "org")]
pub enum Role {
    /// A client installation package of one organization, acting for the
    /// machine that submitted the request.
    Client(OrgCode),
    /// An organization manager: decides workstation and mobile requests of
    /// their own organization only.
    OrgManager(OrgCode),
    /// Staff of the central service provider: everything.
    CentralAdmin,
}

impl Role {
    pub fn name(&self) -> &'static str {
        match self {
            Role::Client(_) => "client",
            Role::OrgManager(_) => "org_manager",
            Role::CentralAdmin => "central_admin",
        }
    }
}

/// An actor: a role plus the name the audit trail records (a package id, a
/// manager's name, `cli:root`…).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub role: Role,
    pub name: String,
}

impl Actor {
    pub fn new(role: Role, name: impl Into<String>) -> Self {
        Actor {
            role,
            name: name.into(),
        }
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name, self.role.name())
    }
}
