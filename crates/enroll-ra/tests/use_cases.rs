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
    let (_, history) = k.ra.show(&admin(), id).await.unwrap();
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
    let e = k.ra.approve(&manager("BBB"), id, None).await.unwrap_err();
    assert!(matches!(e, RaError::Forbidden(_)), "{e}");
    let e =
        k.ra.reject(&manager("BBB"), id, "no", None)
            .await
            .unwrap_err();
    assert!(matches!(e, RaError::Forbidden(_)), "{e}");
    // Not even visible: same answer as a request that does not exist.
    assert!(matches!(
        k.ra.show(&manager("BBB"), id).await.unwrap_err(),
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
        k.ra.show(&admin(), id).await.unwrap().0.request.status,
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
    let e = k.ra.approve(&manager("AAA"), id, None).await.unwrap_err();
    assert!(e.to_string().contains("central administrator"), "{e}");
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
    let status = |id| async move { kr.ra.show(&admin(), id).await.unwrap().0.request.status };
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
    let r = k.ra.acknowledge(&a, id, Some("192.0.2.1")).await.unwrap();
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
    let (view, _) = k.ra.show(&admin(), id).await.unwrap();
    let r = view.request;
    assert_eq!(r.kind, enroll_core::RequestKind::External);
    assert_eq!(r.enrollment_type, EnrollmentType::External);
    // O and C from the package, L/ST/E from the CSR, CN as entered.
    assert_eq!(
        r.subject.subject_name(),
        "E=pki-admin@example.test,C=FR,ST=Berlin,L=Berlin,O=AAA,OU=Server,CN=api.a.example"
    );
    let e = k.ra.approve(&manager("AAA"), id, None).await.unwrap_err();
    assert!(matches!(e, RaError::Forbidden(_)), "{e}");
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
    let r = k.ra.acknowledge(&s, id, None).await.unwrap();
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
    assert_eq!(r.status, RequestStatus::Revoked);
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
