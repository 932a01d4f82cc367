//! The storage contract, run against SQLite (a real file) and PostgreSQL
//! (a fresh database per run, on `$ENROLL_TEST_POSTGRES`, default
//! `postgres://postgres@127.0.0.1:5432/test`). Both backends must behave
//! the same: a PostgreSQL that cannot be reached fails the test.

// A panic in a test is a failed test: unwrapping is how tests say so.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::indexing_slicing)]

use enroll_core::{
    ClientDetails, CountryCode, EnrollmentType, OrgCode, RequestId, RequestKind, RequestStatus,
    SubjectFields, UnixTime,
};
use enroll_store::{
    AltName, AuditEvent, AuditFilter, CertRecord, CredentialPickup, CrlRecord, NewRequest,
    OperatorRecord, OrgRecord, PackageRecord, RequestFilter, SqlStore, StatusChange, Store,
    StoreError,
};
use sqlx::Connection;

fn unique(tag: &str) -> String {
    format!(
        "enroll_{tag}_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    )
}

fn org() -> OrgRecord {
    OrgRecord {
        code: OrgCode::parse("J1CFRA").unwrap(),
        name: "France - La Poste".into(),
        country: CountryCode::parse("FR").unwrap(),
        created_at: UnixTime(1_700_000_000),
    }
}

fn package(id: &str) -> PackageRecord {
    PackageRecord {
        id: id.into(),
        org: OrgCode::parse("J1CFRA").unwrap(),
        environment: "Prod".into(),
        enrollment_type: EnrollmentType::Machine,
        server: false,
        allow_external: true,
        url: "https://enroll.example:8443".into(),
        credential_hash: "ab".repeat(32),
        created_at: UnixTime(1_700_000_001),
        revoked_at: None,
    }
}

fn request(cn: &str, at: i64) -> NewRequest {
    NewRequest {
        package_id: "pkg-1".into(),
        environment: "Prod".into(),
        kind: RequestKind::Workstation,
        enrollment_type: EnrollmentType::Machine,
        subject: SubjectFields {
            email: Some("it@laposte.example".into()),
            country: CountryCode::parse("FR").unwrap(),
            state: Some("IDF".into()),
            locality: Some("Paris".into()),
            organization: OrgCode::parse("J1CFRA").unwrap(),
            organization_unit: "Workstation".into(),
            common_name: cn.into(),
        },
        key_desc: "RSA 2048".into(),
        key_length: Some(2048),
        csr_der: vec![0x30, 0x03, 0x02, 0x01, 0x00],
        spki_der: vec![0x30, 0x00],
        alt_names: vec![
            AltName::Dns("a.example".into()),
            AltName::Ip("192.0.2.1".parse().unwrap()),
        ],
        details: ClientDetails {
            description: Some("Office <12> \"front\"".into()),
            requester: Some("alice".into()),
            ..Default::default()
        },
        source_addr: Some("192.0.2.7".into()),
        submitted_at: UnixTime(at),
    }
}

/// An audit event as the registration authority writes it: a submission
/// records its Pending status, a cancellation its change.
fn event(action: &str) -> AuditEvent {
    let (from_status, to_status) = match action {
        "submit" => (None, Some(RequestStatus::Pending)),
        "cancel" => (Some(RequestStatus::Pending), Some(RequestStatus::Cancelled)),
        _ => (None, None),
    };
    AuditEvent {
        at: UnixTime(1_700_000_100),
        org: Some(OrgCode::parse("J1CFRA").unwrap()),
        actor: "package:pkg-1".into(),
        role: "client".into(),
        source_addr: Some("192.0.2.7".into()),
        request_id: None,
        action: action.into(),
        from_status,
        to_status,
        detail: None,
    }
}

fn change(
    id: RequestId,
    from: RequestStatus,
    to: RequestStatus,
    serial: Option<&str>,
) -> StatusChange {
    let mut audit = event("approve");
    audit.request_id = Some(id);
    audit.from_status = Some(from);
    audit.to_status = Some(to);
    StatusChange {
        id,
        from,
        to,
        at: UnixTime(1_700_000_200),
        decision: Some(("cli:admin".into(), None)),
        downloaded_by: None,
        certificate: serial.map(|s| CertRecord {
            serial: s.into(),
            request_id: Some(id),
            der: vec![1, 2, 3],
            not_before: UnixTime(1),
            not_after: UnixTime(2),
            revoked_at: None,
            revocation_reason: None,
        }),
        revocation: None,
        block_key: None,
        audit,
    }
}

async fn contract(s: &SqlStore) {
    // Organizations and packages.
    s.add_org(&org()).await.unwrap();
    assert!(matches!(
        s.add_org(&org()).await,
        Err(StoreError::Duplicate(_))
    ));
    assert_eq!(s.org("J1CFRA").await.unwrap(), Some(org()));
    assert_eq!(s.org("NOPE").await.unwrap(), None);
    s.add_package(&package("pkg-1")).await.unwrap();
    let p = s.package("pkg-1").await.unwrap().unwrap();
    assert_eq!(p, package("pkg-1"));
    assert_eq!(
        s.package_with_org("pkg-1").await.unwrap(),
        Some((package("pkg-1"), org()))
    );
    assert_eq!(s.package_with_org("pkg-nope").await.unwrap(), None);

    // Submit; a second request for the same machine cancels the first.
    let (id1, gone) = s
        .submit(&request("HOST-A", 10), &event("submit"), &event("cancel"))
        .await
        .unwrap();
    assert!(gone.is_empty());
    let (id2, gone) = s
        .submit(&request("HOST-A", 11), &event("submit"), &event("cancel"))
        .await
        .unwrap();
    assert_eq!(gone, vec![id1]);
    let (id3, gone) = s
        .submit(&request("HOST-B", 12), &event("submit"), &event("cancel"))
        .await
        .unwrap();
    assert!(
        gone.is_empty(),
        "another machine's request is not cancelled"
    );
    let r1 = s.request(id1).await.unwrap().unwrap();
    assert_eq!(r1.status, RequestStatus::Cancelled);
    assert_eq!(
        r1.reason.as_deref(),
        Some(format!("superseded by request {id2}").as_str())
    );
    let r2 = s.request(id2).await.unwrap().unwrap();
    assert_eq!(r2.status, RequestStatus::Pending);
    assert_eq!(
        r2.details.description.as_deref(),
        Some("Office <12> \"front\"")
    );
    assert_eq!(r2.subject, request("HOST-A", 0).subject);
    assert_eq!(r2.alt_names, request("HOST-A", 0).alt_names);
    assert_eq!(r2.spki_der, [0x30, 0x00]);
    let h1 = s.audit_for_request(id1).await.unwrap();
    assert_eq!(
        h1.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        ["submit", "cancel"]
    );

    // Approve once; the second decider loses with a conflict, and nothing
    // of the losing change is stored.
    s.change_status(&change(
        id2,
        RequestStatus::Pending,
        RequestStatus::Approved,
        Some("AA01"),
    ))
    .await
    .unwrap();
    let lost = s
        .change_status(&change(
            id2,
            RequestStatus::Pending,
            RequestStatus::Approved,
            Some("AA02"),
        ))
        .await;
    assert!(matches!(lost, Err(StoreError::Conflict(_))), "{lost:?}");
    assert_eq!(s.certificate_by_serial("AA02").await.unwrap(), None);
    let cert = s.certificate_for_request(id2).await.unwrap().unwrap();
    assert_eq!(cert.serial, "AA01");
    let (joined, joined_cert) = s.request_with_certificate(id2).await.unwrap().unwrap();
    assert_eq!(joined.status, RequestStatus::Approved);
    assert_eq!(joined.subject, request("HOST-A", 0).subject);
    assert_eq!(joined_cert, Some(cert.clone()));
    let (pending, none) = s.request_with_certificate(id3).await.unwrap().unwrap();
    assert_eq!((pending.id, none), (id3, None));
    assert!(
        s.request_with_certificate(RequestId(999_999))
            .await
            .unwrap()
            .is_none()
    );
    let r2 = s.request(id2).await.unwrap().unwrap();
    assert_eq!(r2.status, RequestStatus::Approved);
    assert_eq!(r2.decided_by.as_deref(), Some("cli:admin"));
    assert_eq!(r2.environment, "Prod");
    // A key compromise finds the current certificates for the key: the
    // Approved request, not the Pending or Cancelled ones with that key.
    let current = s.current_with_key(&[0x30, 0x00]).await.unwrap();
    assert_eq!(current.iter().map(|r| r.id).collect::<Vec<_>>(), [id2]);
    assert!(s.current_with_key(&[0x30, 0x01]).await.unwrap().is_empty());

    // A serial is unique across everything signed; the failed change
    // leaves request 3 Pending and writes no audit event.
    let dup = s
        .change_status(&change(
            id3,
            RequestStatus::Pending,
            RequestStatus::Approved,
            Some("AA01"),
        ))
        .await;
    assert!(matches!(dup, Err(StoreError::Duplicate(_))), "{dup:?}");
    assert_eq!(
        s.request(id3).await.unwrap().unwrap().status,
        RequestStatus::Pending
    );
    assert_eq!(s.audit_for_request(id3).await.unwrap().len(), 1);

    // Listing: newest first, filters, keyset paging.
    let all = s
        .list_requests(&RequestFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|r| r.id).collect::<Vec<_>>(),
        [id3, id2, id1]
    );
    let pending = s
        .list_requests(&RequestFilter {
            status: Some(RequestStatus::Pending),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(pending.iter().map(|r| r.id).collect::<Vec<_>>(), [id3]);
    let page2 = s
        .list_requests(&RequestFilter {
            before: Some(id2),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page2.iter().map(|r| r.id).collect::<Vec<_>>(), [id1]);
    let other_org = s
        .list_requests(&RequestFilter {
            org: Some(OrgCode::parse("ZZ99").unwrap()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(other_org.is_empty());

    // Kinds and text: the queue's filters, case-insensitive, with LIKE's
    // own characters taken literally.
    let by_kind = |kinds: Vec<RequestKind>| RequestFilter {
        kinds,
        limit: 10,
        ..Default::default()
    };
    assert_eq!(
        s.list_requests(&by_kind(vec![RequestKind::Workstation]))
            .await
            .unwrap()
            .len(),
        3
    );
    assert!(
        s.list_requests(&by_kind(vec![RequestKind::External]))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        s.list_requests(&by_kind(vec![
            RequestKind::External,
            RequestKind::Workstation
        ]))
        .await
        .unwrap()
        .len(),
        3
    );
    let text = |t: &str| RequestFilter {
        text: Some(t.into()),
        limit: 10,
        ..Default::default()
    };
    let ids = |v: Vec<enroll_store::RequestRecord>| v.iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(ids(s.list_requests(&text("host-b")).await.unwrap()), [id3]);
    assert_eq!(ids(s.list_requests(&text("ALICE")).await.unwrap()).len(), 3);
    assert_eq!(ids(s.list_requests(&text("<12>")).await.unwrap()).len(), 3);
    assert!(s.list_requests(&text("%")).await.unwrap().is_empty());
    assert!(s.list_requests(&text("HOST_")).await.unwrap().is_empty());
    let combined = RequestFilter {
        status: Some(RequestStatus::Pending),
        org: Some(OrgCode::parse("J1CFRA").unwrap()),
        kinds: vec![RequestKind::Workstation],
        text: Some("host".into()),
        before: Some(RequestId(id3.0 + 1)),
        limit: 10,
    };
    assert_eq!(ids(s.list_requests(&combined).await.unwrap()), [id3]);

    // The audit trail: newest first, by organization, request, actor,
    // action prefix, keyset paging.
    let trail = s
        .list_audit(&AuditFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(trail.windows(2).all(|w| w[0].id > w[1].id));
    assert!(trail.iter().all(|e| e.event.org.is_some()));
    let for_id1 = s
        .list_audit(&AuditFilter {
            request_id: Some(id1),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        for_id1
            .iter()
            .map(|e| e.event.action.as_str())
            .collect::<Vec<_>>(),
        ["cancel", "submit"]
    );
    let mut refused = event("refused:approve");
    refused.org = None;
    refused.actor = "web:mallory".into();
    s.audit(&refused).await.unwrap();
    let refusals = s
        .list_audit(&AuditFilter {
            action: Some("refused:".into()),
            actor: Some("MALLORY".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(refusals.len(), 1);
    assert_eq!(refusals[0].event.org, None);
    let own_org = s
        .list_audit(&AuditFilter {
            org: Some(OrgCode::parse("J1CFRA").unwrap()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(own_org.iter().all(|e| e.event.actor != "web:mallory"));
    let older = s
        .list_audit(&AuditFilter {
            before: Some(trail[1].id),
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(older.len(), 1);
    assert!(older[0].id < trail[1].id);

    // Operators: added with a waiting PKCS#12 that is handed out once;
    // one active operator per name; revocation revokes the certificate.
    s.add_certificate(&CertRecord {
        serial: "0P01".into(),
        request_id: None,
        der: vec![9],
        not_before: UnixTime(1),
        not_after: UnixTime(2_000_000_000),
        revoked_at: None,
        revocation_reason: None,
    })
    .await
    .unwrap();
    let op = OperatorRecord {
        id: 0,
        name: "alice".into(),
        role: "org_manager".into(),
        org: Some(OrgCode::parse("J1CFRA").unwrap()),
        cert_serial: "0P01".into(),
        created_at: UnixTime(7),
        revoked_at: None,
    };
    let pickup = CredentialPickup {
        p12: vec![1, 2, 3],
        expires_at: UnixTime(100),
    };
    let op_id = s
        .add_operator(&op, Some(&pickup), &event("operator.add"))
        .await
        .unwrap();
    let stored = s.operator_by_serial("0P01").await.unwrap().unwrap();
    assert_eq!(
        stored,
        OperatorRecord {
            id: op_id,
            ..op.clone()
        }
    );
    assert_eq!(s.operator(op_id).await.unwrap(), Some(stored.clone()));
    let mut twin = op.clone();
    twin.cert_serial = "0P02".into();
    assert!(matches!(
        s.add_operator(&twin, None, &event("operator.add")).await,
        Err(StoreError::Duplicate(_))
    ));
    assert_eq!(s.take_credential(op_id, UnixTime(200)).await.unwrap(), None);
    // Expired pickups are gone too, not kept for later.
    assert_eq!(s.take_credential(op_id, UnixTime(50)).await.unwrap(), None);
    let op2 = s
        .add_operator(
            &OperatorRecord {
                name: "bob".into(),
                cert_serial: "0P03".into(),
                ..op.clone()
            },
            Some(&pickup),
            &event("operator.add"),
        )
        .await
        .unwrap();
    assert_eq!(
        s.take_credential(op2, UnixTime(50)).await.unwrap(),
        Some(vec![1, 2, 3])
    );
    assert_eq!(s.take_credential(op2, UnixTime(50)).await.unwrap(), None);
    s.revoke_operator(
        op_id,
        UnixTime(8),
        "keyCompromise",
        &event("operator.revoke"),
    )
    .await
    .unwrap();
    let gone = s.operator(op_id).await.unwrap().unwrap();
    assert_eq!(gone.revoked_at, Some(UnixTime(8)));
    let cert = s.certificate_by_serial("0P01").await.unwrap().unwrap();
    assert_eq!(cert.revoked_at, Some(UnixTime(8)));
    assert_eq!(cert.revocation_reason.as_deref(), Some("keyCompromise"));
    assert!(matches!(
        s.revoke_operator(
            op_id,
            UnixTime(9),
            "keyCompromise",
            &event("operator.revoke")
        )
        .await,
        Err(StoreError::NotFound(_))
    ));
    // The name is free again once its holder is revoked.
    s.add_operator(&twin, None, &event("operator.add"))
        .await
        .unwrap();
    assert_eq!(s.list_operators().await.unwrap().len(), 3);

    // Revoking for keyCompromise blocks the key in the same transaction.
    assert_eq!(s.blocked_key("beef").await.unwrap(), None);
    let mut revoke = change(id2, RequestStatus::Approved, RequestStatus::Revoked, None);
    revoke.decision = None;
    revoke.revocation = Some((UnixTime(9), "keyCompromise".into()));
    revoke.block_key = Some("beef".into());
    s.change_status(&revoke).await.unwrap();
    assert_eq!(s.blocked_key("beef").await.unwrap(), Some(Some(id2)));
    assert_eq!(
        s.certificate_for_request(id2)
            .await
            .unwrap()
            .unwrap()
            .revocation_reason
            .as_deref(),
        Some("keyCompromise")
    );

    // A package credential rotates only while the package is active.
    s.rotate_package("pkg-1", &"cd".repeat(32), &event("package.rotate"))
        .await
        .unwrap();
    assert_eq!(
        s.package("pkg-1").await.unwrap().unwrap().credential_hash,
        "cd".repeat(32)
    );

    // Package revocation is recorded once.
    s.revoke_package("pkg-1", UnixTime(5), &event("package.revoke"))
        .await
        .unwrap();
    assert_eq!(
        s.package("pkg-1").await.unwrap().unwrap().revoked_at,
        Some(UnixTime(5))
    );
    assert!(matches!(
        s.revoke_package("pkg-1", UnixTime(6), &event("package.revoke"))
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        s.rotate_package("pkg-1", &"ef".repeat(32), &event("package.rotate"))
            .await,
        Err(StoreError::NotFound(_))
    ));
}

/// Many nodes at once: submissions for one machine leave exactly one
/// Pending request, and deciders racing on one request issue exactly one
/// certificate.
async fn races(s: &SqlStore) {
    let mut set = tokio::task::JoinSet::new();
    for i in 0..16 {
        let s = s.clone();
        set.spawn(async move {
            s.submit(
                &request("RACE-HOST", 100 + i),
                &event("submit"),
                &event("cancel"),
            )
            .await
        });
    }
    let mut ids = Vec::new();
    while let Some(r) = set.join_next().await {
        ids.push(r.unwrap().unwrap().0);
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 16);
    let pending = s
        .list_requests(&RequestFilter {
            status: Some(RequestStatus::Pending),
            text: Some("RACE-HOST".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(pending.len(), 1, "one Pending request per machine");
    let cancelled = s
        .list_requests(&RequestFilter {
            status: Some(RequestStatus::Cancelled),
            text: Some("RACE-HOST".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(cancelled.len(), 15);
    for c in &cancelled {
        let why = c.reason.as_deref().unwrap_or_default();
        assert!(why.starts_with("superseded by request "), "{why}");
        let trail = s.audit_for_request(c.id).await.unwrap();
        assert_eq!(
            trail.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
            ["submit", "cancel"]
        );
    }

    // Packages of several environments sit side by side on one machine:
    // a Test request leaves the Prod one Pending.
    let mut in_test = request("RACE-HOST", 200);
    in_test.environment = "Test".into();
    let (_, gone) = s
        .submit(&in_test, &event("submit"), &event("cancel"))
        .await
        .unwrap();
    assert!(
        gone.is_empty(),
        "another environment's request was cancelled"
    );

    let target = pending[0].id;
    assert_eq!(
        s.request(target).await.unwrap().unwrap().status,
        RequestStatus::Pending
    );
    let mut set = tokio::task::JoinSet::new();
    for i in 0..8 {
        let s = s.clone();
        set.spawn(async move {
            s.change_status(&change(
                target,
                RequestStatus::Pending,
                RequestStatus::Approved,
                Some(&format!("RACE{i:02}")),
            ))
            .await
        });
    }
    let mut won = 0;
    while let Some(r) = set.join_next().await {
        match r.unwrap() {
            Ok(()) => won += 1,
            Err(StoreError::Conflict(_)) => {}
            Err(e) => panic!("a losing decider got {e:?}, not a conflict"),
        }
    }
    assert_eq!(won, 1, "exactly one decider wins");
    assert!(s.certificate_for_request(target).await.unwrap().is_some());
    let approvals = s
        .audit_for_request(target)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.action == "approve")
        .count();
    assert_eq!(approvals, 1, "only the winner's audit event is stored");
}

/// Publishers on many nodes at once: each CRL gets the next number, none
/// is lost, and the numbers have no gaps.
async fn crl_publishers(s: &SqlStore) {
    let start = s.latest_crl().await.unwrap().map_or(0, |c| c.number);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let s = s.clone();
        set.spawn(async move {
            s.publish_crl(UnixTime(0), |number, _listed| {
                Ok::<_, ()>(CrlRecord {
                    number,
                    this_update: UnixTime(1_700_000_000),
                    next_update: UnixTime(1_700_086_400),
                    der: vec![0x30, 0x00],
                })
            })
            .await
        });
    }
    let mut numbers = Vec::new();
    while let Some(r) = set.join_next().await {
        numbers.push(r.unwrap().unwrap().unwrap().number);
    }
    numbers.sort();
    assert_eq!(numbers, ((start + 1)..=(start + 16)).collect::<Vec<_>>());
    // A build that fails stores nothing.
    let failed = s
        .publish_crl(UnixTime(0), |_, _| Err::<CrlRecord, _>("no key"))
        .await
        .unwrap();
    assert_eq!(failed, Err("no key"));
    assert_eq!(s.latest_crl().await.unwrap().unwrap().number, start + 16);
}

/// The queue's text search below the newest 500 requests, where SQLite
/// asks its trigram index: 600 requests by one requester, the oldest of
/// them the only server request and the only one with a needle.
async fn search(s: &SqlStore) {
    let mut ids = Vec::new();
    for i in 0..600 {
        let mut r = request(&format!("SRCH-{i:04}"), 1_000 + i);
        r.details.requester = Some("Durand".into());
        r.details.description = Some(format!("batch {i} \"quoted\" 100%"));
        if i == 0 {
            r.kind = RequestKind::Server;
            r.details.description = Some("a NEEDLE in \"quoted\" 100%".into());
        }
        let (id, _) = s
            .submit(&r, &event("submit"), &event("cancel"))
            .await
            .unwrap();
        ids.push(id);
    }
    let find =
        |text: &str, kinds: Vec<RequestKind>, before: Option<RequestId>, limit| RequestFilter {
            text: Some(text.into()),
            kinds,
            before,
            limit,
            ..Default::default()
        };
    let got = |v: Vec<enroll_store::RequestRecord>| v.iter().map(|r| r.id).collect::<Vec<_>>();
    // The only match is 599 hits down: found across batches.
    assert_eq!(
        got(s
            .list_requests(&find("durand", vec![RequestKind::Server], None, 10))
            .await
            .unwrap()),
        [ids[0]]
    );
    assert_eq!(
        got(s
            .list_requests(&find("srch-0007", vec![], None, 10))
            .await
            .unwrap()),
        [ids[7]]
    );
    // Keyset paging: the page after the 100 newest, newest first.
    let newest: Vec<_> = ids.iter().rev().copied().collect();
    assert_eq!(
        got(s
            .list_requests(&find("DURAND", vec![], Some(newest[99]), 50))
            .await
            .unwrap()),
        newest[100..150]
    );
    // Quotes and LIKE's own characters are text like any other.
    assert_eq!(
        s.list_requests(&find("\"quoted\" 100%", vec![], None, 1000))
            .await
            .unwrap()
            .len(),
        600
    );
    assert!(
        s.list_requests(&find("quoted\" 1000", vec![], None, 10))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_file_meets_the_contract() {
    let dir = std::env::temp_dir().join(unique("store"));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("enroll.db").display());
    let s = SqlStore::connect(&url).await.unwrap();
    assert_eq!(s.backend_name(), "sqlite");
    contract(&s).await;
    races(&s).await;
    crl_publishers(&s).await;
    search(&s).await;
    let report = s.check_consistency().await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert!(report.requests > 0 && report.certificates > 0 && report.audit_events > 0);
    // What a crash or a bug could leave is found: a certificate gone from
    // under an Approved request, an audit event missing.
    let mut raw = sqlx::AnyConnection::connect(&url).await.unwrap();
    sqlx::query("DELETE FROM certificates WHERE serial = 'AA01'")
        .execute(&mut raw)
        .await
        .unwrap();
    sqlx::query("DELETE FROM audit_events WHERE action = 'submit' AND request_id = (SELECT MIN(id) FROM requests)")
        .execute(&mut raw)
        .await
        .unwrap();
    let report = s.check_consistency().await.unwrap();
    let text = report.problems.join("\n");
    assert!(text.contains("but has no certificate"), "{text}");
    assert!(text.contains("submit events instead of one"), "{text}");
    s.close().await;
    // Reopening runs the migrations again without harm.
    let s = SqlStore::connect(&url).await.unwrap();
    assert!(s.org("J1CFRA").await.unwrap().is_some());
    s.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_meets_the_contract() {
    let admin_url = std::env::var("ENROLL_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    sqlx::any::install_default_drivers();
    let mut admin = sqlx::AnyConnection::connect(&admin_url)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {admin_url} is needed by this test: {e}"));
    let db = unique("t");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
        .execute(&mut admin)
        .await
        .unwrap();
    let base = admin_url.rsplit_once('/').map(|(b, _)| b).unwrap();
    let s = SqlStore::connect(&format!("{base}/{db}")).await.unwrap();
    assert_eq!(s.backend_name(), "postgres");
    contract(&s).await;
    races(&s).await;
    crl_publishers(&s).await;
    search(&s).await;
    let report = s.check_consistency().await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    s.close().await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE {db} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await
    .unwrap();
}
