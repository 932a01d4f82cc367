//! The registration authority's use cases on a real SQLite file and a real
//! CA: who may decide what, what is audited, what is issued.

// A panic in a test is a failed test: unwrapping is how tests say so.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::indexing_slicing)]

use std::sync::Arc;

use enroll_core::clock::FixedClock;
use enroll_core::{
    Actor, ClientDetails, EnrollmentType, OrgCode, RequestId, RequestStatus, Role, SubjectInput,
    UnixTime,
};
use enroll_pki::profile::DnAttr;
use enroll_pki::revocation::Reason;
use enroll_pki::{CaMaterial, CertInfo, IssuingCa, KeyType, Profile};
use enroll_ra::{
    ExternalSubmission, IssuePolicy, PackageSession, PackageSpec, Ra, RaError, Submission,
};
use enroll_store::{SqlStore, Store};

const NOW: UnixTime = UnixTime(1_800_000_000);
const HWID: &str = "40B0343FA07DBFEBFBFF000906E99D09A4C85CB1415B9897660CBA152853";

struct Kit {
    ra: Ra<SqlStore, FixedClock>,
    material: CaMaterial,
    dir: std::path::PathBuf,
}

impl Drop for Kit {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn admin() -> Actor {
    Actor::new(Role::CentralAdmin, "admin")
}

fn manager(org: &str) -> Actor {
    Actor::new(
        Role::OrgManager(OrgCode::parse(org).unwrap()),
        format!("mgr-{org}"),
    )
}

async fn kit(tag: &str) -> Kit {
    let dir = std::env::temp_dir().join(format!(
        "enroll-ra-{tag}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let store = SqlStore::connect(&format!("sqlite://{}", dir.join("t.db").display()))
        .await
        .unwrap();
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let m = CaMaterial::create(KeyType::EcdsaP256, "Test", NOW, &rng).unwrap();
    let ra = Ra::new(
        store,
        Arc::new(issuing(&m)),
        FixedClock(NOW),
        IssuePolicy::default(),
    );
    ra.add_org(&admin(), "AAA", "Org A", "FR").await.unwrap();
    ra.add_org(&admin(), "BBB", "Org B", "DE").await.unwrap();
    Kit {
        ra,
        material: m,
        dir,
    }
}

fn issuing(m: &CaMaterial) -> IssuingCa {
    let key = enroll_pki::keys::load_key_pem(&m.issuing_key_pem).unwrap();
    IssuingCa::new(&m.issuing_cert_pem, &m.root_cert_pem, key).unwrap()
}

async fn session(k: &Kit, org: &str, server: bool) -> PackageSession {
    package(k, org, server, false).await
}

async fn package(k: &Kit, org: &str, server: bool, allow_external: bool) -> PackageSession {
    let created =
        k.ra.create_package(
            &admin(),
            PackageSpec {
                org: OrgCode::parse(org).unwrap(),
                environment: "Prod".into(),
                enrollment_type: EnrollmentType::Machine,
                server,
                allow_external,
                url: "https://enroll.example:8443".into(),
            },
        )
        .await
        .unwrap();
    k.ra.authenticate_package(&created.credential.expose())
        .await
        .unwrap()
}

fn submission(cn: &str, bits: u32) -> Submission {
    let key = KeyType::rsa(bits).unwrap().generate().unwrap();
    let csr = enroll_pki::csr::build_request(
        &[(DnAttr::CommonName, cn.to_owned())],
        Profile::ClientAuth,
        &key,
    )
    .unwrap();
    Submission {
        subject: SubjectInput {
            common_name: cn.into(),
            email: Some("it@a.example".into()),
            locality: Some("Paris".into()),
            state: Some("IDF".into()),
        },
        key_length: Some(bits),
        csr: csr.into_bytes(),
        details: ClientDetails {
            requester: Some("alice".into()),
            ..Default::default()
        },
    }
}

async fn refusals(k: &Kit, id: RequestId) -> usize {
    k.ra.store()
        .audit_for_request(id)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.action.starts_with("refused:"))
        .count()
}

#[tokio::test]
async fn own_manager_approves_a_workstation_and_the_certificate_follows_policy() {
    let k = kit("ws").await;
    let s = session(&k, "AAA", false).await;
    let id =
        k.ra.submit(&s, submission(HWID, 2048), Some("192.0.2.1"))
            .await
            .unwrap()
            .id;
    let view =
        k.ra.approve(&manager("AAA"), id, Some("198.51.100.9"))
            .await
            .unwrap();
    assert_eq!(view.request.status, RequestStatus::Approved);
    let cert = view.certificate.unwrap();
    let info = CertInfo::from_der(&cert.der).unwrap();
    assert_eq!(
        info.subject,
        format!("E=it@a.example,C=FR,ST=IDF,L=Paris,O=AAA,OU=Workstation,CN={HWID}")
    );
    assert_eq!(info.not_after, NOW.plus_days(365));
    assert!(info.serial.as_bytes().len() >= 8);
    let (_, history) = k.ra.show(&admin(), id, None).await.unwrap();
    let approve = history.iter().find(|e| e.action == "approve").unwrap();
    assert_eq!(approve.actor, "mgr-AAA");
    assert_eq!(approve.source_addr.as_deref(), Some("198.51.100.9"));
    assert_eq!(approve.from_status, Some(RequestStatus::Pending));
    assert_eq!(approve.to_status, Some(RequestStatus::Approved));
}

#[tokio::test]
async fn another_organizations_manager_is_refused_and_audited() {
    let k = kit("other").await;
    let s = session(&k, "AAA", false).await;
    let id =
        k.ra.submit(&s, submission(HWID, 2048), None)
            .await
            .unwrap()
            .id;
    // Not even visible: same answer as a request that does not exist,
    // whether deciding or looking.
    let e = k.ra.approve(&manager("BBB"), id, None).await.unwrap_err();
    assert!(matches!(e, RaError::NotFound(_)), "{e}");
    let e =
        k.ra.reject(&manager("BBB"), id, "no", None)
            .await
            .unwrap_err();
    assert!(matches!(e, RaError::NotFound(_)), "{e}");
    assert!(matches!(
        k.ra.show(&manager("BBB"), id, None).await.unwrap_err(),
        RaError::NotFound(_)
    ));
    assert!(
        k.ra.list(&manager("BBB"), Default::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(refusals(&k, id).await, 3);
    assert_eq!(
        k.ra.show(&admin(), id, None)
            .await
            .unwrap()
            .0
            .request
            .status,
        RequestStatus::Pending
    );
}

#[tokio::test]
async fn server_requests_need_the_central_administrator() {
    let k = kit("srv").await;
    let s = session(&k, "AAA", true).await;
    let id =
        k.ra.submit(&s, submission("api.a.example", 3072), None)
            .await
            .unwrap()
            .id;
    // The organization's manager does not see server requests at all.
    let e = k.ra.approve(&manager("AAA"), id, None).await.unwrap_err();
    assert!(matches!(e, RaError::NotFound(_)), "{e}");
    assert_eq!(refusals(&k, id).await, 1);
    let view = k.ra.approve(&admin(), id, None).await.unwrap();
    let info = CertInfo::from_der(&view.certificate.unwrap().der).unwrap();
    assert!(
        info.subject.ends_with("O=AAA,OU=Server,CN=api.a.example"),
        "{}",
        info.subject
    );
}

#[tokio::test]
async fn a_new_request_cancels_the_pending_one_of_the_same_machine_only() {
    let k = kit("cancel").await;
    let s = session(&k, "AAA", true).await;
    let a1 =
        k.ra.submit(&s, submission("a.a.example", 2048), None)
            .await
            .unwrap();
    let b1 =
        k.ra.submit(&s, submission("b.a.example", 2048), None)
            .await
            .unwrap();
    let a2 =
        k.ra.submit(&s, submission("a.a.example", 2048), None)
            .await
            .unwrap();
    assert_eq!(a2.cancelled, vec![a1.id]);
    let kr = &k;
    let status = |id| async move {
        kr.ra
            .show(&admin(), id, None)
            .await
            .unwrap()
            .0
            .request
            .status
    };
    assert_eq!(status(a1.id).await, RequestStatus::Cancelled);
    assert_eq!(status(b1.id).await, RequestStatus::Pending);
    // A cancelled request cannot be approved.
    let e = k.ra.approve(&admin(), a1.id, None).await.unwrap_err();
    assert!(matches!(e, RaError::InvalidStatus(_)), "{e}");
}

#[tokio::test]
async fn submissions_are_validated_before_anything_is_stored() {
    let k = kit("bad").await;
    let s = session(&k, "AAA", false).await;
    // Claimed 4096, the key has 2048; and a bad email.
    let mut sub = submission(HWID, 2048);
    sub.key_length = Some(4096);
    sub.subject.email = Some("not an email".into());
    match k.ra.submit(&s, sub, None).await.unwrap_err() {
        RaError::Policy(v) => {
            let fields: Vec<_> = v.iter().map(|p| p.field).collect();
            assert_eq!(fields, ["email", "key_length"]);
        }
        e => panic!("{e}"),
    }
    // A workstation's common name must be its hardware identity.
    let e =
        k.ra.submit(&s, submission("host.example", 2048), None)
            .await
            .unwrap_err();
    assert!(matches!(e, RaError::Policy(_)), "{e}");
    // A CSR that is not one.
    let mut sub = submission(HWID, 2048);
    sub.csr =
        b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n".to_vec();
    assert!(matches!(
        k.ra.submit(&s, sub, None).await.unwrap_err(),
        RaError::Csr(_)
    ));
    assert!(
        k.ra.list(&admin(), Default::default())
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn package_urls_must_name_a_host() {
    let k = kit("url").await;
    for url in [
        "https://",
        "https://:8443",
        "http://a.example",
        "https://a.example:99999",
        "https://a b.example",
    ] {
        let e =
            k.ra.create_package(
                &admin(),
                PackageSpec {
                    org: OrgCode::parse("AAA").unwrap(),
                    environment: "Prod".into(),
                    enrollment_type: EnrollmentType::Machine,
                    server: false,
                    allow_external: false,
                    url: url.into(),
                },
            )
            .await
            .unwrap_err();
        assert!(matches!(e, RaError::Policy(_)), "{url}: {e}");
    }
}

#[tokio::test]
async fn revoked_or_forged_package_credentials_are_refused() {
    let k = kit("cred").await;
    let s = session(&k, "AAA", false).await;
    let forged = format!("enr1.{}.{}", s.package.id, "0".repeat(64));
    assert!(matches!(
        k.ra.authenticate_package(&forged).await.unwrap_err(),
        RaError::Unauthenticated(_)
    ));
    assert!(matches!(
        k.ra.authenticate_package("garbage").await.unwrap_err(),
        RaError::Unauthenticated(_)
    ));
    k.ra.revoke_package(&admin(), &s.package.id).await.unwrap();
    // A manager may not create or revoke packages.
    let e =
        k.ra.revoke_package(&manager("AAA"), &s.package.id)
            .await
            .unwrap_err();
    assert!(matches!(e, RaError::Forbidden(_)));
}

#[tokio::test]
async fn clients_install_only_their_organizations_approved_requests() {
    let k = kit("install").await;
    let a = session(&k, "AAA", false).await;
    let b = session(&k, "BBB", false).await;
    let id =
        k.ra.submit(&a, submission(HWID, 2048), None)
            .await
            .unwrap()
            .id;
    // Not approved yet.
    assert!(matches!(
        k.ra.acknowledge(&a, id, None).await.unwrap_err(),
        RaError::InvalidStatus(_)
    ));
    k.ra.approve(&admin(), id, None).await.unwrap();
    // Another environment's package of the same organization cannot see it.
    let test_env =
        k.ra.create_package(
            &admin(),
            PackageSpec {
                org: OrgCode::parse("AAA").unwrap(),
                environment: "Test".into(),
                enrollment_type: EnrollmentType::Machine,
                server: false,
                allow_external: false,
                url: "https://enroll-test.example:8443".into(),
            },
        )
        .await
        .unwrap();
    let t =
        k.ra.authenticate_package(&test_env.credential.expose())
            .await
            .unwrap();
    assert!(matches!(
        k.ra.acknowledge(&t, id, None).await.unwrap_err(),
        RaError::NotFound(_)
    ));
    // A copy of the same environment's package (rotated credential) can.
    let a2 = session(&k, "AAA", false).await;
    assert!(k.ra.client_view(&a2, id).await.is_ok());
    // Another organization's package cannot see it.
    assert!(matches!(
        k.ra.acknowledge(&b, id, None).await.unwrap_err(),
        RaError::NotFound(_)
    ));
    let v = k.ra.acknowledge(&a, id, Some("192.0.2.1")).await.unwrap();
    assert!(
        v.certificate.is_some(),
        "the installed request keeps its certificate"
    );
    let r = v.request;
    assert_eq!(r.status, RequestStatus::Installed);
    assert!(r.downloaded_by.unwrap().contains("alice"));
    assert_eq!(r.downloaded_at, Some(NOW));
}

fn corpus(file: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../testdata/csr/generated")
            .join(file),
    )
    .unwrap()
}

fn external(file: &str, cn: &str) -> ExternalSubmission {
    ExternalSubmission {
        csr: corpus(file),
        common_name: cn.into(),
        details: ClientDetails::default(),
    }
}

#[tokio::test]
async fn external_requests_need_a_package_that_allows_them() {
    let k = kit("ext-pkg").await;
    let plain = session(&k, "AAA", false).await;
    let e =
        k.ra.submit_external(
            &plain,
            external("g01_openssl_rsa2048_server_ok.pem", "api.a.example"),
            None,
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("--allow-external"), "{e}");
    assert!(
        k.ra.list(&admin(), Default::default())
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn external_requests_are_decided_centrally_and_issued_for_their_names() {
    let k = kit("ext").await;
    let s = package(&k, "AAA", false, true).await;
    let id =
        k.ra.submit_external(
            &s,
            external("g01_openssl_rsa2048_server_ok.pem", "API.a.example"),
            Some("192.0.2.3"),
        )
        .await
        .unwrap()
        .id;
    let (view, _) = k.ra.show(&admin(), id, None).await.unwrap();
    let r = view.request;
    assert_eq!(r.kind, enroll_core::RequestKind::External);
    assert_eq!(r.enrollment_type, EnrollmentType::External);
    // O and C from the package, L/ST/E from the CSR, CN as entered.
    assert_eq!(
        r.subject.subject_name(),
        "E=pki-admin@example.test,C=FR,ST=Berlin,L=Berlin,O=AAA,OU=Server,CN=api.a.example"
    );
    let e = k.ra.approve(&manager("AAA"), id, None).await.unwrap_err();
    assert!(matches!(e, RaError::NotFound(_)), "{e}");
    assert_eq!(refusals(&k, id).await, 1);
    let view = k.ra.approve(&admin(), id, None).await.unwrap();
    let der = view.certificate.unwrap().der;
    let info = CertInfo::from_der(&der).unwrap();
    assert!(
        info.subject.ends_with("OU=Server,CN=api.a.example"),
        "{}",
        info.subject
    );
    // A workstation package of the same organization and environment
    // cannot fetch or acknowledge it: external certificates go only to
    // packages trusted with external requests.
    let plain = package(&k, "AAA", false, false).await;
    let e = k.ra.acknowledge(&plain, id, None).await.unwrap_err();
    assert!(matches!(e, RaError::NotFound(_)), "{e}");
    assert!(k.ra.client_view(&plain, id).await.is_err());
    // The client downloads it; installing is for own machines only.
    let r = k.ra.acknowledge(&s, id, None).await.unwrap().request;
    assert_eq!(r.status, RequestStatus::Downloaded);
}

#[tokio::test]
async fn external_csr_problems_are_all_reported() {
    let k = kit("ext-bad").await;
    let s = package(&k, "AAA", false, true).await;
    let e =
        k.ra.submit_external(
            &s,
            external("g41_keytool_ec_p256_clientauth.csr", "x.a.example"),
            None,
        )
        .await
        .unwrap_err();
    let RaError::Csr(c) = e else { panic!("{e}") };
    let codes: Vec<_> = c.0.iter().map(|p| p.code).collect();
    assert!(
        codes.contains(&"ku.missing") && codes.contains(&"eku.missing"),
        "{codes:?}"
    );
}

fn crl_serials(der: &[u8]) -> (u64, Vec<String>) {
    let (_, crl) = x509_parser::parse_x509_crl(der).unwrap();
    let number = crl
        .crl_number()
        .map(|n| u64::try_from(n).unwrap())
        .unwrap_or(0);
    let serials = crl
        .iter_revoked_certificates()
        .map(|r| r.raw_serial_as_string().replace(':', "").to_uppercase())
        .collect();
    (number, serials)
}

#[tokio::test]
async fn revocation_reaches_the_crl_and_leaves_it_a_period_after_expiry() {
    let k = kit("crl").await;
    let s = session(&k, "AAA", false).await;
    let id =
        k.ra.submit(&s, submission(HWID, 2048), None)
            .await
            .unwrap()
            .id;
    let serial =
        k.ra.approve(&admin(), id, None)
            .await
            .unwrap()
            .certificate
            .unwrap()
            .serial;
    let first = k.ra.publish_crl().await.unwrap();
    assert!(crl_serials(&first.der).1.is_empty());
    // A hold would be undone later; here a revocation is final.
    assert!(matches!(
        k.ra.revoke(&admin(), id, Reason::CertificateHold, None)
            .await
            .unwrap_err(),
        RaError::Policy(_)
    ));
    // An organization manager may revoke their own workstation.
    let r =
        k.ra.revoke(
            &manager("AAA"),
            id,
            Reason::KeyCompromise,
            Some("192.0.2.9"),
        )
        .await
        .unwrap();
    assert_eq!(r.request.status, RequestStatus::Revoked);
    let latest = k.ra.current_crl().await.unwrap();
    let (number, serials) = crl_serials(&latest.der);
    assert!(number > u64::try_from(first.number).unwrap());
    assert_eq!(serials, vec![serial.clone()]);
    // Revoked is final.
    assert!(matches!(
        k.ra.revoke(&admin(), id, Reason::Superseded, None)
            .await
            .unwrap_err(),
        RaError::InvalidStatus(_)
    ));
    // A day and a half after the certificate expired (CRL period: one
    // day), it is no longer listed.
    let later = Ra::new(
        k.ra.store().clone(),
        Arc::new(issuing(&k.material)),
        FixedClock(UnixTime(NOW.0 + 366 * 86_400 + 36 * 3600)),
        IssuePolicy::default(),
    );
    let dropped = later.publish_crl().await.unwrap();
    assert!(crl_serials(&dropped.der).1.is_empty());
    assert!(dropped.number > latest.number);
}

#[tokio::test]
async fn crl_numbers_stay_unique_when_nodes_race() {
    let k = kit("crl-race").await;
    let other = Ra::new(
        k.ra.store().clone(),
        Arc::new(issuing(&k.material)),
        FixedClock(NOW),
        IssuePolicy::default(),
    );
    let mut numbers = Vec::new();
    for _ in 0..10 {
        let (a, b) = tokio::join!(k.ra.publish_crl(), other.publish_crl());
        numbers.push(a.unwrap().number);
        numbers.push(b.unwrap().number);
    }
    let mut sorted = numbers.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        sorted.len(),
        numbers.len(),
        "duplicate CRL numbers: {numbers:?}"
    );
}

async fn submitted(k: &Kit, org: &str, server: bool, cn: &str) -> RequestId {
    let s = session(k, org, server).await;
    k.ra.submit(&s, submission(cn, 2048), None)
        .await
        .unwrap()
        .id
}

#[tokio::test]
async fn managers_see_only_their_organizations_workstation_requests() {
    let k = kit("visibility").await;
    let ws_a = submitted(&k, "AAA", false, HWID).await;
    let srv_a = submitted(&k, "AAA", true, "api.a.example").await;
    let ws_b = submitted(&k, "BBB", false, HWID).await;
    let ids = |v: Vec<enroll_store::RequestRecord>| v.iter().map(|r| r.id).collect::<Vec<_>>();
    let all = enroll_store::RequestFilter {
        limit: 50,
        ..Default::default()
    };
    assert_eq!(
        ids(k.ra.list(&admin(), all.clone()).await.unwrap()),
        [ws_b, srv_a, ws_a]
    );
    assert_eq!(
        ids(k.ra.list(&manager("AAA"), all.clone()).await.unwrap()),
        [ws_a]
    );
    // Asking for the server kind gives nothing, not the server request.
    let servers = enroll_store::RequestFilter {
        kinds: vec![enroll_core::RequestKind::Server],
        ..all.clone()
    };
    assert!(
        k.ra.list(&manager("AAA"), servers)
            .await
            .unwrap()
            .is_empty()
    );
    // Asking for another organization is a refusal, on record.
    let other = enroll_store::RequestFilter {
        org: Some(OrgCode::parse("BBB").unwrap()),
        ..all.clone()
    };
    assert!(matches!(
        k.ra.list(&manager("AAA"), other).await,
        Err(RaError::Forbidden(_))
    ));
    // Detail and preview: the server request and the other organization's
    // request look missing, and each attempt is audited.
    for id in [srv_a, ws_b] {
        assert!(matches!(
            k.ra.show(&manager("AAA"), id, None).await,
            Err(RaError::NotFound(_))
        ));
        assert!(matches!(
            k.ra.preview(&manager("AAA"), id, None).await,
            Err(RaError::NotFound(_))
        ));
        // Deciding tells no more than looking: the same answer, not a
        // reason that would give the request's organization or kind away.
        let from = Some("192.0.2.7");
        assert!(matches!(
            k.ra.approve(&manager("AAA"), id, from).await,
            Err(RaError::NotFound(_))
        ));
        assert!(matches!(
            k.ra.reject(&manager("AAA"), id, "no", from).await,
            Err(RaError::NotFound(_))
        ));
        assert!(matches!(
            k.ra.revoke(&manager("AAA"), id, Reason::Superseded, from)
                .await,
            Err(RaError::NotFound(_))
        ));
    }
    let trail =
        k.ra.audit_trail(
            &manager("AAA"),
            enroll_store::AuditFilter {
                action: Some("refused:".into()),
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(trail.len(), 11, "{trail:?}");
    let decisions: Vec<_> = trail
        .iter()
        .filter(|e| {
            ["refused:approve", "refused:reject", "refused:revoke"]
                .contains(&e.event.action.as_str())
        })
        .collect();
    assert_eq!(decisions.len(), 6, "{trail:?}");
    assert!(
        decisions
            .iter()
            .all(|e| e.event.source_addr.as_deref() == Some("192.0.2.7")),
        "{decisions:?}"
    );
}

#[tokio::test]
async fn the_audit_trail_is_scoped_to_the_managers_organization() {
    let k = kit("audit").await;
    let a = submitted(&k, "AAA", false, HWID).await;
    let b = submitted(&k, "BBB", false, HWID).await;
    k.ra.approve(&manager("BBB"), b, None).await.unwrap();
    let trail = |actor: Actor| {
        let ra = &k.ra;
        async move {
            ra.audit_trail(
                &actor,
                enroll_store::AuditFilter {
                    limit: 100,
                    ..Default::default()
                },
            )
            .await
            .unwrap()
        }
    };
    let mine = trail(manager("AAA")).await;
    assert!(!mine.is_empty());
    assert!(
        mine.iter()
            .all(|e| e.event.org == Some(OrgCode::parse("AAA").unwrap()))
    );
    assert!(mine.iter().any(|e| e.event.request_id == Some(a)));
    assert!(mine.iter().all(|e| e.event.request_id != Some(b)));
    let everything = trail(admin()).await;
    assert!(everything.len() > mine.len());
    let client = session(&k, "AAA", false).await.actor();
    assert!(matches!(
        k.ra.audit_trail(&client, enroll_store::AuditFilter::default())
            .await,
        Err(RaError::Forbidden(_))
    ));
}

#[tokio::test]
async fn the_preview_is_what_approval_issues_and_lints_clean() {
    let k = kit("preview").await;
    let id = submitted(&k, "AAA", false, HWID).await;
    let preview = k.ra.preview(&manager("AAA"), id, None).await.unwrap();
    assert!(preview.findings.is_empty(), "{:?}", preview.findings);
    let issued = k.ra.approve(&manager("AAA"), id, None).await.unwrap();
    let real = CertInfo::from_der(&issued.certificate.unwrap().der).unwrap();
    let seen = CertInfo::from_der(&preview.der).unwrap();
    assert_eq!(seen.subject, real.subject);
    assert_eq!(seen.issuer, real.issuer);
    assert_eq!(seen.spki_der, real.spki_der);
    // The preview carries a signature of zeros: it verifies against
    // nothing, least of all the issuing CA.
    let ca = x509_parser::pem::parse_x509_pem(k.material.issuing_cert_pem.as_bytes())
        .unwrap()
        .1;
    let ca = ca.parse_x509().unwrap();
    let (_, p) = x509_parser::parse_x509_certificate(&preview.der).unwrap();
    assert!(p.verify_signature(Some(ca.public_key())).is_err());
}

fn operator_spec(name: &str, role: Role) -> enroll_ra::OperatorSpec {
    enroll_ra::OperatorSpec {
        name: name.into(),
        role,
        protection: enroll_pki::pkcs12::Protection::Modern,
        pickup: true,
    }
}

fn leaf_of(p12: &[u8], passphrase: &str) -> Vec<u8> {
    let ks = p12_keystore::KeyStore::from_pkcs12(
        p12,
        passphrase,
        p12_keystore::Pkcs12ImportPolicy::default(),
    )
    .unwrap();
    let (_, chain) = ks.private_key_chain().unwrap();
    assert_eq!(chain.certs().len(), 3, "leaf, issuing CA, root");
    chain.certs()[0].as_der().to_vec()
}

#[tokio::test]
async fn operators_sign_in_with_their_own_current_credential_only() {
    let k = kit("operators").await;
    let a_role = Role::OrgManager(OrgCode::parse("AAA").unwrap());
    let new =
        k.ra.issue_operator(&admin(), operator_spec("alice", a_role.clone()), None)
            .await
            .unwrap();
    assert!(!format!("{new:?}").contains(&new.passphrase));
    let leaf = leaf_of(&new.p12, &new.passphrase);
    let actor =
        k.ra.authenticate_operator(Some(&leaf), None, "GET /requests")
            .await
            .unwrap();
    assert_eq!(actor.role, a_role);
    assert_eq!(actor.name, "web:alice");

    // Handed out once.
    let (_, p12) =
        k.ra.take_operator_credential(&admin(), new.record.id, None)
            .await
            .unwrap();
    assert_eq!(p12, new.p12);
    assert!(matches!(
        k.ra.take_operator_credential(&admin(), new.record.id, None)
            .await,
        Err(RaError::NotFound(_))
    ));

    // Only the central administrator issues, lists and revokes; a
    // manager's attempt is refused and audited.
    assert!(matches!(
        k.ra.issue_operator(&actor, operator_spec("eve", Role::CentralAdmin), None)
            .await,
        Err(RaError::Forbidden(_))
    ));
    assert!(matches!(
        k.ra.list_operators(&actor).await,
        Err(RaError::Forbidden(_))
    ));
    // One active operator per name; a manager needs an existing org.
    assert!(matches!(
        k.ra.issue_operator(&admin(), operator_spec("alice", a_role.clone()), None)
            .await,
        Err(RaError::Duplicate(_))
    ));
    assert!(matches!(
        k.ra.issue_operator(
            &admin(),
            operator_spec("zed", Role::OrgManager(OrgCode::parse("ZZZ").unwrap())),
            None
        )
        .await,
        Err(RaError::NotFound(_))
    ));
    assert!(matches!(
        k.ra.issue_operator(&admin(), operator_spec("bad name", a_role.clone()), None)
            .await,
        Err(RaError::Policy(_))
    ));

    // What is refused at sign-in: nothing, garbage, a client's own
    // certificate from the same CA, a certificate from another CA, and a
    // revoked manager. Every refusal is on record.
    let ws = submitted(&k, "AAA", false, HWID).await;
    let client_cert =
        k.ra.approve(&admin(), ws, None)
            .await
            .unwrap()
            .certificate
            .unwrap()
            .der;
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let foreign = CaMaterial::create(KeyType::EcdsaP256, "Other", NOW, &rng).unwrap();
    let foreign_der = enroll_pki::inspect::first_cert_der(&foreign.issuing_cert_pem).unwrap();
    k.ra.revoke_operator(&admin(), new.record.id, Reason::KeyCompromise, None)
        .await
        .unwrap();
    let refused: [Option<&[u8]>; 5] = [
        None,
        Some(b"junk"),
        Some(&client_cert),
        Some(&foreign_der),
        Some(&leaf),
    ];
    for presented in refused {
        assert!(matches!(
            k.ra.authenticate_operator(presented, Some("192.0.2.9"), "GET /requests")
                .await,
            Err(RaError::Unauthenticated(_))
        ));
    }
    let signins =
        k.ra.audit_trail(
            &admin(),
            enroll_store::AuditFilter {
                action: Some("refused:signin".into()),
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(signins.len(), 5);
    assert!(
        signins
            .iter()
            .all(|e| e.event.source_addr.as_deref() == Some("192.0.2.9"))
    );

    // The revoked manager's certificate is on the CRL.
    let crl = k.ra.current_crl().await.unwrap();
    let (_, listed) = crl_serials(&crl.der);
    let serial = CertInfo::from_der(&leaf).unwrap().serial.to_hex();
    assert!(listed.contains(&serial), "{serial} not in {listed:?}");
}

#[tokio::test]
async fn the_last_central_administrator_cannot_be_revoked() {
    let k = kit("last-admin").await;
    let first =
        k.ra.issue_operator(&admin(), operator_spec("root1", Role::CentralAdmin), None)
            .await
            .unwrap();
    assert!(matches!(
        k.ra.revoke_operator(&admin(), first.record.id, Reason::Superseded, None)
            .await,
        Err(RaError::Forbidden(_))
    ));
    let second =
        k.ra.issue_operator(&admin(), operator_spec("root2", Role::CentralAdmin), None)
            .await
            .unwrap();
    k.ra.revoke_operator(&admin(), first.record.id, Reason::Superseded, None)
        .await
        .unwrap();
    assert!(matches!(
        k.ra.revoke_operator(&admin(), second.record.id, Reason::Superseded, None)
            .await,
        Err(RaError::Forbidden(_))
    ));
}

#[tokio::test]
async fn a_rotated_package_credential_replaces_the_old_one() {
    let k = kit("rotate").await;
    let created =
        k.ra.create_package(
            &admin(),
            PackageSpec {
                org: OrgCode::parse("AAA").unwrap(),
                environment: "Prod".into(),
                enrollment_type: EnrollmentType::User,
                server: false,
                allow_external: false,
                url: "https://enroll.example:8443".into(),
            },
        )
        .await
        .unwrap();
    let old = created.credential.expose();
    let rotated =
        k.ra.rotate_package(&admin(), &created.package.id)
            .await
            .unwrap();
    assert_eq!(rotated.package.id, created.package.id);
    assert!(matches!(
        k.ra.authenticate_package(&old).await,
        Err(RaError::Unauthenticated(_))
    ));
    k.ra.authenticate_package(&rotated.credential.expose())
        .await
        .unwrap();
    assert!(matches!(
        k.ra.rotate_package(&manager("AAA"), &created.package.id)
            .await,
        Err(RaError::Forbidden(_))
    ));
    k.ra.revoke_package(&admin(), &created.package.id)
        .await
        .unwrap();
    assert!(matches!(
        k.ra.rotate_package(&admin(), &created.package.id).await,
        Err(RaError::Conflict(_))
    ));
}

fn submission_with(key: &rcgen::KeyPair, cn: &str) -> Submission {
    let csr = enroll_pki::csr::build_request(
        &[(DnAttr::CommonName, cn.to_owned())],
        Profile::ClientAuth,
        key,
    )
    .unwrap();
    Submission {
        csr: csr.into_bytes(),
        ..submission_template(cn)
    }
}

fn submission_template(cn: &str) -> Submission {
    Submission {
        subject: SubjectInput {
            common_name: cn.into(),
            email: Some("it@a.example".into()),
            locality: Some("Paris".into()),
            state: Some("IDF".into()),
        },
        key_length: Some(2048),
        csr: Vec::new(),
        details: ClientDetails::default(),
    }
}

#[tokio::test]
async fn a_key_revoked_for_compromise_is_never_certified_again() {
    let k = kit("blocked-key").await;
    let key = KeyType::Rsa2048.generate().unwrap();
    let s = session(&k, "AAA", true).await;
    let first =
        k.ra.submit(&s, submission_with(&key, "one.a.example"), None)
            .await
            .unwrap()
            .id;
    // A second request with the same key waits while the first is revoked.
    let waiting =
        k.ra.submit(&s, submission_with(&key, "two.a.example"), None)
            .await
            .unwrap()
            .id;
    k.ra.approve(&admin(), first, None).await.unwrap();
    // Another organization's certificate for the same key (its holder
    // sent the same CSR through both packages) goes down with it.
    let s_b = session(&k, "BBB", true).await;
    let twin =
        k.ra.submit(&s_b, submission_with(&key, "one.b.example"), None)
            .await
            .unwrap()
            .id;
    k.ra.approve(&admin(), twin, None).await.unwrap();
    let done =
        k.ra.revoke(&admin(), first, Reason::KeyCompromise, None)
            .await
            .unwrap();
    assert_eq!(done.request.status, RequestStatus::Revoked);
    assert_eq!(done.also_revoked, [twin]);
    assert!(done.still_valid.is_empty());
    let (view, history) = k.ra.show(&admin(), twin, None).await.unwrap();
    assert_eq!(view.request.status, RequestStatus::Revoked);
    let cert = view.certificate.unwrap();
    assert_eq!(cert.revocation_reason.as_deref(), Some("keyCompromise"));
    assert!(
        history.iter().any(|e| e.action == "revoke"
            && e.detail.as_deref() == Some(&format!("keyCompromise: the key of request {first}"))),
        "{history:?}"
    );
    let compromised = |e: RaError| matches!(e, RaError::Csr(c) if c.0[0].code == "key.compromised");
    assert!(compromised(
        k.ra.approve(&admin(), waiting, None).await.unwrap_err()
    ));
    assert!(compromised(
        k.ra.submit(&s, submission_with(&key, "three.a.example"), None)
            .await
            .unwrap_err()
    ));
    // Another reason does not block the key.
    let other = KeyType::Rsa2048.generate().unwrap();
    let id =
        k.ra.submit(&s, submission_with(&other, "four.a.example"), None)
            .await
            .unwrap()
            .id;
    k.ra.approve(&admin(), id, None).await.unwrap();
    k.ra.revoke(&admin(), id, Reason::Superseded, None)
        .await
        .unwrap();
    k.ra.submit(&s, submission_with(&other, "five.a.example"), None)
        .await
        .unwrap();
}
