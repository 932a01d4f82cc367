//! The operators of the web application: organization managers and
//! central administrators, who sign in with a certificate Enroll issued
//! them. Issuing, revoking and checking those credentials.

use enroll_core::{Actor, OrgCode, PolicyViolation, Role, UnixTime};
use enroll_pki::pkcs12::{self, Protection};
use enroll_pki::profile::DnAttr;
use enroll_pki::revocation::Reason;
use enroll_pki::{CertInfo, KeyInfo, KeyType, Profile};
use enroll_store::{CredentialPickup, OperatorRecord, Store};

use crate::{Ra, RaError, Result, UnboundCert, forbid};
use enroll_core::Clock;

/// Who to issue a credential to.
#[derive(Debug, Clone)]
pub struct OperatorSpec {
    /// A login-like name, unique among active operators.
    pub name: String,
    /// [`Role::CentralAdmin`] or [`Role::OrgManager`].
    pub role: Role,
    pub protection: Protection,
    /// Keep the PKCS#12 in the database for one download (the web
    /// application); the command line writes it to a file instead.
    pub pickup: bool,
}

/// A freshly issued operator credential. The passphrase is shown once and
/// kept nowhere; its `Debug` hides it.
pub struct NewOperator {
    pub record: OperatorRecord,
    pub cert_pem: String,
    /// Key, certificate and chain, encrypted with the passphrase.
    pub p12: Vec<u8>,
    pub passphrase: String,
    /// The same key as PKCS#8 PEM, for tools that want PEM files (curl).
    pub key_pem: String,
}

impl std::fmt::Debug for NewOperator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewOperator")
            .field("record", &self.record)
            .finish_non_exhaustive()
    }
}

/// How long a PKCS#12 waits in the database for its one download.
const PICKUP_SECONDS: i64 = 24 * 3600;
/// Operator credentials are renewed yearly.
const OPERATOR_DAYS: u32 = 365;

fn role_name(role: &Role) -> &'static str {
    role.name()
}

fn check_name(name: &str) -> std::result::Result<String, PolicyViolation> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'));
    if ok {
        Ok(name.to_owned())
    } else {
        Err(PolicyViolation::new(
            "name",
            "an operator name is 1 to 64 letters, digits, '.', '_', '-' or '@', e.g. alice.martin",
        ))
    }
}

impl<S: Store, C: Clock> Ra<S, C> {
    /// Checks a certificate presented at the TLS handshake (which proved
    /// possession of its key, but not who issued it): it must be one of
    /// ours byte for byte, current, not revoked, and an active operator's.
    /// Every refusal is audited with `what` (the route asked for).
    pub async fn authenticate_operator(
        &self,
        presented: Option<&[u8]>,
        source: Option<&str>,
        what: &str,
    ) -> Result<Actor> {
        match self.check_operator(presented).await {
            Ok(actor) => Ok(actor),
            Err(RaError::Unauthenticated(why)) => {
                let anonymous = Actor::new(Role::CentralAdmin, "anonymous");
                let mut ev = self.event(&anonymous, source, None, "refused:signin");
                ev.role = "none".into();
                ev.detail = Some(format!("{what}: {why}"));
                self.store().audit(&ev).await?;
                Err(RaError::Unauthenticated(why))
            }
            Err(e) => Err(e),
        }
    }

    async fn check_operator(&self, presented: Option<&[u8]>) -> Result<Actor> {
        let denied = |why: &str| RaError::Unauthenticated(why.to_owned());
        let der = presented.ok_or_else(|| {
            denied("no client certificate was presented; import your Enroll credential (.p12) into the browser")
        })?;
        let info =
            CertInfo::from_der(der).map_err(|_| denied("the client certificate cannot be read"))?;
        let foreign = || denied("the client certificate was not issued by this Enroll service");
        let stored = self
            .store()
            .certificate_by_serial(&info.serial.to_hex())
            .await?
            .ok_or_else(foreign)?;
        if stored.der != der {
            return Err(foreign());
        }
        let now = self.now();
        if now.0 < stored.not_before.0 {
            return Err(denied("the client certificate is not valid yet"));
        }
        if now.0 > stored.not_after.0 {
            return Err(denied(
                "the client certificate has expired; ask the central administrator for a new credential",
            ));
        }
        if stored.revoked_at.is_some() {
            return Err(denied("the client certificate has been revoked"));
        }
        let op = self
            .store()
            .operator_by_serial(&stored.serial)
            .await?
            .ok_or_else(|| {
                denied("the client certificate is not a manager's or administrator's credential")
            })?;
        if op.revoked_at.is_some() {
            return Err(denied("this manager's credential has been revoked"));
        }
        let role = match (op.role.as_str(), &op.org) {
            ("central_admin", _) => Role::CentralAdmin,
            ("org_manager", Some(org)) => Role::OrgManager(org.clone()),
            _ => {
                return Err(denied(
                    "the operator record is inconsistent; ask the central administrator",
                ));
            }
        };
        Ok(Actor::new(role, format!("web:{}", op.name)))
    }

    /// Issues a manager's or administrator's credential: a new key, its
    /// certificate, and a PKCS#12 under a one-time passphrase.
    pub async fn issue_operator(
        &self,
        actor: &Actor,
        spec: OperatorSpec,
        source: Option<&str>,
    ) -> Result<NewOperator> {
        if let Err(e) = Self::require_admin(actor, "issue manager credentials") {
            return self.refuse(actor, source, None, "operator.add", e).await;
        }
        let name = check_name(&spec.name).map_err(|e| RaError::Policy(vec![e]))?;
        let org = match &spec.role {
            Role::OrgManager(org) => {
                self.store()
                    .org(org.as_str())
                    .await?
                    .ok_or_else(|| RaError::NotFound(format!("organization {org}")))?;
                Some(org.clone())
            }
            Role::CentralAdmin => None,
            Role::Client(_) => {
                return Err(RaError::Policy(vec![PolicyViolation::new(
                    "role",
                    "an operator is a central administrator or an organization manager",
                )]));
            }
        };
        if self
            .store()
            .list_operators()
            .await?
            .iter()
            .any(|o| o.revoked_at.is_none() && o.name == name)
        {
            return Err(RaError::Duplicate(format!(
                "an active operator named {name:?}; revoke it first or choose another name"
            )));
        }
        let key = KeyType::EcdsaP256.generate()?;
        let mut subject = Vec::new();
        match &org {
            Some(o) => {
                subject.push((DnAttr::Organization, o.as_str().to_owned()));
                subject.push((DnAttr::OrganizationUnit, "Organization Manager".to_owned()));
            }
            None => subject.push((DnAttr::OrganizationUnit, "Central Administrator".to_owned())),
        }
        subject.push((DnAttr::CommonName, name.clone()));
        let issued = self
            .issue_unbound(UnboundCert {
                profile: Profile::Operator,
                subject,
                spki_der: enroll_pki::keys::spki_der(&key),
                key: KeyInfo::EcdsaP256,
                dns_names: Vec::new(),
                ip_addresses: Vec::new(),
                validity_days: OPERATOR_DAYS,
            })
            .await?;
        let chain = [
            issued.der.clone(),
            self.ca().cert_der(),
            enroll_pki::inspect::first_cert_der(self.ca().root_pem())?,
        ];
        let passphrase = pkcs12::passphrase(&self.rng)?;
        let p12 = pkcs12::build(
            &name,
            &key.serialize_der(),
            &chain,
            &passphrase,
            spec.protection,
        )?;
        let now = self.now();
        let mut record = OperatorRecord {
            id: 0,
            name,
            role: role_name(&spec.role).to_owned(),
            org,
            cert_serial: issued.serial.to_hex(),
            created_at: now,
            revoked_at: None,
        };
        let pickup = spec.pickup.then(|| CredentialPickup {
            p12: p12.clone(),
            expires_at: UnixTime(now.0 + PICKUP_SECONDS),
        });
        let mut ev = self.event(actor, source, None, "operator.add");
        ev.org = record.org.clone();
        ev.detail = Some(format!(
            "{} as {} ({})",
            record.name, record.role, record.cert_serial
        ));
        record.id = self
            .store()
            .add_operator(&record, pickup.as_ref(), &ev)
            .await?;
        Ok(NewOperator {
            record,
            cert_pem: issued.pem,
            p12,
            passphrase,
            key_pem: key.serialize_pem(),
        })
    }

    /// Records an operator whose certificate was issued elsewhere with
    /// [`Ra::issue_unbound`] (the first administrator, at initialisation).
    pub async fn add_operator(&self, actor: &Actor, op: OperatorRecord) -> Result<i64> {
        let mut ev = self.event(actor, None, None, "operator.add");
        ev.org = op.org.clone();
        ev.detail = Some(format!("{} as {} ({})", op.name, op.role, op.cert_serial));
        Ok(self.store().add_operator(&op, None, &ev).await?)
    }

    pub async fn list_operators(&self, actor: &Actor) -> Result<Vec<OperatorRecord>> {
        if let Err(e) = Self::require_admin(actor, "list managers") {
            return self.refuse(actor, None, None, "operator.list", e).await;
        }
        Ok(self.store().list_operators().await?)
    }

    /// Hands out a new operator's PKCS#12 once (within a day of issuing).
    pub async fn take_operator_credential(
        &self,
        actor: &Actor,
        id: i64,
        source: Option<&str>,
    ) -> Result<(OperatorRecord, Vec<u8>)> {
        if let Err(e) = Self::require_admin(actor, "download manager credentials") {
            return self
                .refuse(actor, source, None, "operator.download", e)
                .await;
        }
        let op = self
            .store()
            .operator(id)
            .await?
            .ok_or_else(|| RaError::NotFound(format!("operator {id}")))?;
        let p12 = self
            .store()
            .take_credential(id, self.now())
            .await?
            .ok_or_else(|| {
                RaError::NotFound(format!(
                    "a waiting credential for operator {id} (it is handed out once, within a day; issue a new one)"
                ))
            })?;
        let mut ev = self.event(actor, source, None, "operator.download");
        ev.org = op.org.clone();
        ev.detail = Some(op.name.clone());
        self.store().audit(&ev).await?;
        Ok((op, p12))
    }

    /// Revokes an operator: their certificate is revoked (and on the next
    /// CRL at once) and they can no longer sign in.
    pub async fn revoke_operator(
        &self,
        actor: &Actor,
        id: i64,
        reason: Reason,
        source: Option<&str>,
    ) -> Result<OperatorRecord> {
        if let Err(e) = Self::require_admin(actor, "revoke manager credentials") {
            return self.refuse(actor, source, None, "operator.revoke", e).await;
        }
        if reason == Reason::CertificateHold {
            return Err(RaError::Policy(vec![PolicyViolation::new(
                "reason",
                "certificateHold is temporary, but a revocation here is final",
            )]));
        }
        let all = self.store().list_operators().await?;
        let op = all
            .iter()
            .find(|o| o.id == id && o.revoked_at.is_none())
            .cloned()
            .ok_or_else(|| RaError::NotFound(format!("an active operator {id}")))?;
        let admins = all
            .iter()
            .filter(|o| o.revoked_at.is_none() && o.role == "central_admin")
            .count();
        if op.role == "central_admin" && admins <= 1 {
            let e = forbid(
                actor,
                "revoke",
                "this is the last active central administrator; issue another one first",
            );
            return self.refuse(actor, source, None, "operator.revoke", e).await;
        }
        let mut ev = self.event(actor, source, None, "operator.revoke");
        ev.org = op.org.clone();
        ev.detail = Some(format!("{} ({})", op.name, reason.name()));
        self.store()
            .revoke_operator(id, self.now(), reason.name(), &ev)
            .await?;
        self.publish_crl().await?;
        self.store()
            .operator(id)
            .await?
            .ok_or_else(|| RaError::NotFound(format!("operator {id}")))
    }

    /// The organization an operator manages, if any (for pages).
    pub fn operator_org(actor: &Actor) -> Option<&OrgCode> {
        match &actor.role {
            Role::OrgManager(o) => Some(o),
            _ => None,
        }
    }
}
