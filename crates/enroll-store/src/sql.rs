//! [`SqlStore`]: the [`Store`] on SQLite or PostgreSQL through sqlx's
//! `Any` driver. Queries use `$n` placeholders, which both accept.

use std::str::FromStr;

use enroll_core::{
    ClientDetails, CountryCode, EnrollmentType, OrgCode, RequestId, RequestKind, RequestStatus,
    SubjectFields, UnixTime,
};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyConnection, AnyPool, AssertSqlSafe, Row};

use crate::{
    AltName, AuditEntry, AuditEvent, AuditFilter, CertRecord, ConsistencyReport, CredentialPickup,
    CrlRecord, NewRequest, OperatorRecord, OrgRecord, PackageRecord, RequestFilter, RequestRecord,
    Result, StatusChange, Store, StoreError,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

/// The SQL store. Cheap to clone: it is a connection pool.
///
/// Writes go through `writer`. On SQLite that is a pool of one
/// connection: SQLite admits one writer at a time, and writers that
/// queue here wait their turn in order, where several connections
/// would each take the lock in turn by polling (its busy handler sleeps
/// for milliseconds between tries), wasting the time every commit's
/// sync left free. Write transactions there begin IMMEDIATE, so a
/// transaction never reads under a snapshot another process then
/// invalidates. On PostgreSQL, `writer` is the same pool as `pool`.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: AnyPool,
    writer: AnyPool,
    backend: Backend,
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl SqlStore {
    /// Connects to `url` (`sqlite:///path/enroll.db` or
    /// `postgres://user@host/db`) and brings the schema up to date.
    pub async fn connect(url: &str) -> Result<SqlStore> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::NotFound(format!(
                "a database driver for {url:?}: use sqlite:///path/enroll.db or postgres://user@host/db"
            )));
        };
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}mode=rwc")
            }
            _ => url.to_owned(),
        };
        if backend == Backend::Postgres {
            // One plain attempt first: a pool retries a refused connection
            // until its 30 s timeout and then says only "timed out".
            use sqlx::Connection as _;
            let probe = sqlx::AnyConnection::connect(&url).await.map_err(|e| {
                StoreError::Unavailable(match e.as_database_error() {
                    Some(d) => d.message().to_owned(),
                    None => e.to_string(),
                })
            })?;
            let _ = probe.close().await;
        }
        let options = |max: u32| {
            let opts = AnyPoolOptions::new().max_connections(max);
            if backend == Backend::Postgres {
                return opts.after_connect(|conn, _| {
                    Box::pin(async move {
                        // Plans for this statement's values: a generic plan
                        // cannot see that `LIKE '%rare%'` is rare, scans the
                        // table backwards instead of the trigram indexes,
                        // and takes seconds at a million requests. JIT
                        // compilation costs more than any of our queries.
                        sqlx::query("SET plan_cache_mode = force_custom_plan")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("SET jit = off").execute(&mut *conn).await?;
                        Ok(())
                    })
                });
            }
            // A SQLite connection is a file handle on a thread of its
            // own: there is no server to have gone away, and a ping per
            // query is one more round trip to that thread.
            opts.test_before_acquire(false).after_connect(|conn, _| {
                Box::pin(async move {
                    // The operator's command line writes while the service
                    // runs: wait for the other writer rather than fail.
                    sqlx::query("PRAGMA busy_timeout = 15000")
                        .execute(&mut *conn)
                        .await?;
                    Ok(())
                })
            })
        };
        let writer = options(if backend == Backend::Sqlite { 1 } else { 8 })
            .connect(&url)
            .await?;
        if backend == Backend::Sqlite {
            // WAL lets readers and one writer work at once; the mode is
            // stored in the file, so setting it once per open is enough.
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&writer)
                .await?;
            SQLITE_MIGRATIONS.run(&writer).await?;
        } else {
            POSTGRES_MIGRATIONS.run(&writer).await?;
        }
        let pool = match backend {
            Backend::Sqlite => options(8).connect(&url).await?,
            Backend::Postgres => writer.clone(),
        };
        Ok(SqlStore {
            pool,
            writer,
            backend,
        })
    }

    /// Closes the pool. On SQLite the write-ahead log is folded into the
    /// database file first, so the file alone is complete again.
    pub async fn close(&self) {
        if self.backend == Backend::Sqlite {
            let _ = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&self.writer)
                .await;
        }
        self.pool.close().await;
        self.writer.close().await;
    }
}

fn map_unique(e: sqlx::Error, what: String) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Duplicate(what),
        _ => StoreError::Database(e),
    }
}

fn b(v: bool) -> i64 {
    i64::from(v)
}

fn opt_time(v: Option<i64>) -> Option<UnixTime> {
    v.map(UnixTime)
}

fn corrupt(what: &str, v: &str) -> StoreError {
    StoreError::Corrupt(format!("{what} {v:?}"))
}

fn org_from_row(r: &AnyRow) -> Result<OrgRecord> {
    let code: String = r.try_get("code")?;
    let country: String = r.try_get("country")?;
    Ok(OrgRecord {
        code: OrgCode::parse(&code).map_err(|_| corrupt("organization code", &code))?,
        name: r.try_get("name")?,
        country: CountryCode::parse(&country).map_err(|_| corrupt("country", &country))?,
        created_at: UnixTime(r.try_get("created_at")?),
    })
}

fn package_from_row(r: &AnyRow) -> Result<PackageRecord> {
    let org: String = r.try_get("org_code")?;
    let et: String = r.try_get("enrollment_type")?;
    Ok(PackageRecord {
        id: r.try_get("id")?,
        org: OrgCode::parse(&org).map_err(|_| corrupt("organization code", &org))?,
        environment: r.try_get("environment")?,
        enrollment_type: EnrollmentType::parse(&et).ok_or_else(|| corrupt("type", &et))?,
        server: r.try_get::<i64, _>("server")? != 0,
        allow_external: r.try_get::<i64, _>("allow_external")? != 0,
        url: r.try_get("url")?,
        credential_hash: r.try_get("credential_hash")?,
        created_at: UnixTime(r.try_get("created_at")?),
        revoked_at: opt_time(r.try_get("revoked_at")?),
    })
}

const REQUEST_COLUMNS: &str = "id, org_code, package_id, kind, enrollment_type, status, \
    common_name, email, country, state, locality, organization_unit, key_desc, key_length, \
    csr_der, spki_der, alt_names, fqdn, mac, nic_id, processor_id, os_version, os_type, requester, source_addr, \
    phone, description, submitted_at, decided_at, decided_by, reason, downloaded_at, \
    downloaded_by, environment";

/// The columns a new request is stored with, in [`bind_new_request`]'s order.
const NEW_REQUEST_COLUMNS: &str = "org_code, package_id, kind, enrollment_type, status, \
    common_name, email, country, state, locality, organization_unit, key_desc, key_length, \
    csr_der, fqdn, mac, nic_id, processor_id, os_version, os_type, requester, source_addr, \
    phone, description, submitted_at, spki_der, alt_names, environment";
const NEW_REQUEST_COLUMN_COUNT: usize = 28;

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

/// Binds one new request's values, [`NEW_REQUEST_COLUMNS`] in order.
fn bind_new_request<'q>(q: AnyQuery<'q>, r: &'q NewRequest, status: RequestStatus) -> AnyQuery<'q> {
    let (s, d) = (&r.subject, &r.details);
    let alt_names = (!r.alt_names.is_empty()).then(|| {
        r.alt_names
            .iter()
            .map(AltName::to_text)
            .collect::<Vec<_>>()
            .join("\n")
    });
    q.bind(s.organization.as_str())
        .bind(&r.package_id)
        .bind(r.kind.as_str())
        .bind(r.enrollment_type.as_str())
        .bind(status.as_str())
        .bind(&s.common_name)
        .bind(&s.email)
        .bind(s.country.as_str())
        .bind(&s.state)
        .bind(&s.locality)
        .bind(&s.organization_unit)
        .bind(&r.key_desc)
        .bind(r.key_length.map(i64::from))
        .bind(&r.csr_der)
        .bind(&d.fqdn)
        .bind(&d.mac)
        .bind(&d.nic_id)
        .bind(&d.processor_id)
        .bind(&d.os_version)
        .bind(&d.os_type)
        .bind(&d.requester)
        .bind(&r.source_addr)
        .bind(&d.phone)
        .bind(&d.description)
        .bind(r.submitted_at.0)
        .bind(&r.spki_der)
        .bind(alt_names)
        .bind(&r.environment)
}

/// `($1, …, $cols), ($cols+1, …)` for `rows` rows.
fn placeholders(rows: usize, cols: usize) -> String {
    (0..rows)
        .map(|i| {
            let marks: Vec<String> = (1..=cols).map(|c| format!("${}", i * cols + c)).collect();
            format!("({})", marks.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn request_from_row(r: &AnyRow) -> Result<RequestRecord> {
    let org: String = r.try_get("org_code")?;
    let country: String = r.try_get("country")?;
    let kind: String = r.try_get("kind")?;
    let et: String = r.try_get("enrollment_type")?;
    let status: String = r.try_get("status")?;
    let key_length: Option<i64> = r.try_get("key_length")?;
    Ok(RequestRecord {
        id: RequestId(r.try_get("id")?),
        package_id: r.try_get("package_id")?,
        environment: r.try_get("environment")?,
        kind: RequestKind::parse(&kind).ok_or_else(|| corrupt("kind", &kind))?,
        enrollment_type: EnrollmentType::parse(&et).ok_or_else(|| corrupt("type", &et))?,
        status: RequestStatus::from_str(&status).map_err(|_| corrupt("status", &status))?,
        subject: SubjectFields {
            email: r.try_get("email")?,
            country: CountryCode::parse(&country).map_err(|_| corrupt("country", &country))?,
            state: r.try_get("state")?,
            locality: r.try_get("locality")?,
            organization: OrgCode::parse(&org).map_err(|_| corrupt("organization", &org))?,
            organization_unit: r.try_get("organization_unit")?,
            common_name: r.try_get("common_name")?,
        },
        key_desc: r.try_get("key_desc")?,
        key_length: key_length.and_then(|k| u32::try_from(k).ok()),
        csr_der: r.try_get("csr_der")?,
        spki_der: r.try_get("spki_der")?,
        alt_names: r
            .try_get::<Option<String>, _>("alt_names")?
            .unwrap_or_default()
            .lines()
            .map(|l| AltName::parse(l).ok_or_else(|| corrupt("alternative name", l)))
            .collect::<Result<_>>()?,
        details: ClientDetails {
            fqdn: r.try_get("fqdn")?,
            mac: r.try_get("mac")?,
            nic_id: r.try_get("nic_id")?,
            processor_id: r.try_get("processor_id")?,
            os_version: r.try_get("os_version")?,
            os_type: r.try_get("os_type")?,
            requester: r.try_get("requester")?,
            phone: r.try_get("phone")?,
            description: r.try_get("description")?,
        },
        source_addr: r.try_get("source_addr")?,
        submitted_at: UnixTime(r.try_get("submitted_at")?),
        decided_at: opt_time(r.try_get("decided_at")?),
        decided_by: r.try_get("decided_by")?,
        reason: r.try_get("reason")?,
        downloaded_at: opt_time(r.try_get("downloaded_at")?),
        downloaded_by: r.try_get("downloaded_by")?,
    })
}

fn cert_from_row(r: &AnyRow) -> Result<CertRecord> {
    Ok(CertRecord {
        serial: r.try_get("serial")?,
        request_id: r.try_get::<Option<i64>, _>("request_id")?.map(RequestId),
        der: r.try_get("der")?,
        not_before: UnixTime(r.try_get("not_before")?),
        not_after: UnixTime(r.try_get("not_after")?),
        revoked_at: opt_time(r.try_get("revoked_at")?),
        revocation_reason: r.try_get("revocation_reason")?,
    })
}

fn audit_from_row(r: &AnyRow) -> Result<AuditEvent> {
    let status = |col: &str| -> Result<Option<RequestStatus>> {
        let v: Option<String> = r.try_get(col)?;
        v.map(|s| RequestStatus::from_str(&s).map_err(|_| corrupt("status", &s)))
            .transpose()
    };
    let org: Option<String> = r.try_get("org_code")?;
    Ok(AuditEvent {
        at: UnixTime(r.try_get("at")?),
        org: org
            .map(|o| OrgCode::parse(&o).map_err(|_| corrupt("organization code", &o)))
            .transpose()?,
        actor: r.try_get("actor")?,
        role: r.try_get("role")?,
        source_addr: r.try_get("source_addr")?,
        request_id: r.try_get::<Option<i64>, _>("request_id")?.map(RequestId),
        action: r.try_get("action")?,
        from_status: status("from_status")?,
        to_status: status("to_status")?,
        detail: r.try_get("detail")?,
    })
}

async fn insert_audit(conn: &mut AnyConnection, e: &AuditEvent) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_events (at, actor, role, source_addr, request_id, action, \
         from_status, to_status, detail, org_code) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(e.at.0)
    .bind(&e.actor)
    .bind(&e.role)
    .bind(&e.source_addr)
    .bind(e.request_id.map(|i| i.0))
    .bind(&e.action)
    .bind(e.from_status.map(|s| s.as_str()))
    .bind(e.to_status.map(|s| s.as_str()))
    .bind(&e.detail)
    .bind(e.org.as_ref().map(|o| o.as_str().to_owned()))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

fn operator_from_row(r: &AnyRow) -> Result<OperatorRecord> {
    let org: Option<String> = r.try_get("org_code")?;
    Ok(OperatorRecord {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        role: r.try_get("role")?,
        org: org
            .map(|o| OrgCode::parse(&o).map_err(|_| corrupt("organization code", &o)))
            .transpose()?,
        cert_serial: r.try_get("cert_serial")?,
        created_at: UnixTime(r.try_get("created_at")?),
        revoked_at: opt_time(r.try_get("revoked_at")?),
    })
}

/// A value bound to a statement whose WHERE clause is assembled from the
/// filters present: one plan per combination, each able to use its index
/// (a catch-all `($1 IS NULL OR col = $1)` defeats both planners).
enum Arg {
    Int(i64),
    Text(String),
}

#[derive(Default)]
struct Where {
    clauses: Vec<String>,
    args: Vec<Arg>,
}

impl Where {
    /// Adds `clause`, in which `?` stands for the next placeholder.
    fn push(&mut self, clause: &str, arg: Arg) {
        self.args.push(arg);
        let n = self.args.len();
        self.clauses.push(clause.replace('?', &format!("${n}")));
    }

    fn sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.clauses.join(" AND "))
        }
    }

    fn bind<'q>(
        self,
        mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
        for a in self.args {
            q = match a {
                Arg::Int(v) => q.bind(v),
                Arg::Text(v) => q.bind(v),
            };
        }
        q
    }
}

/// The queue filter as SQL, with `before` replaced by `below` when given.
fn request_where(f: &RequestFilter, below: Option<i64>) -> Where {
    let mut w = Where::default();
    if let Some(st) = f.status {
        w.push("status = ?", Arg::Text(st.as_str().to_owned()));
    }
    if let Some(o) = &f.org {
        w.push("org_code = ?", Arg::Text(o.as_str().to_owned()));
    }
    match f.kinds.as_slice() {
        [] => {}
        [k] => w.push("kind = ?", Arg::Text(k.as_str().to_owned())),
        kinds => {
            // Kinds are a closed set of constants: formatting them in
            // keeps the statement count small.
            let list = kinds
                .iter()
                .map(|k| format!("'{}'", k.as_str()))
                .collect::<Vec<_>>()
                .join(", ");
            w.clauses.push(format!("kind IN ({list})"));
        }
    }
    if let Some(t) = f.text.as_deref().filter(|t| !t.is_empty()) {
        w.push(
            "(LOWER(common_name) LIKE ? ESCAPE '\\' \
                 OR LOWER(COALESCE(requester, '')) LIKE ? ESCAPE '\\' \
                 OR LOWER(COALESCE(description, '')) LIKE ? ESCAPE '\\')",
            Arg::Text(like_pattern(t)),
        );
    }
    if let Some(b) = below.or(f.before.map(|b| b.0)) {
        w.push("id < ?", Arg::Int(b));
    }
    w
}

/// `%text%` for LIKE, lower-cased, with LIKE's own characters escaped.
fn like_pattern(text: &str) -> String {
    let mut p = String::with_capacity(text.len() + 2);
    p.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

fn clamp_limit(limit: u32) -> u32 {
    if limit == 0 { 100 } else { limit.min(1000) }
}

async fn insert_cert(conn: &mut AnyConnection, c: &CertRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO certificates (serial, request_id, der, not_before, not_after) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&c.serial)
    .bind(c.request_id.map(|i| i.0))
    .bind(&c.der)
    .bind(c.not_before.0)
    .bind(c.not_after.0)
    .execute(&mut *conn)
    .await
    .map_err(|e| map_unique(e, format!("certificate serial {} or its request", c.serial)))?;
    Ok(())
}

impl Store for SqlStore {
    async fn add_org(&self, org: &OrgRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO organizations (code, name, country, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(org.code.as_str())
        .bind(&org.name)
        .bind(org.country.as_str())
        .bind(org.created_at.0)
        .execute(&self.writer)
        .await
        .map_err(|e| map_unique(e, format!("organization {}", org.code)))?;
        Ok(())
    }

    async fn org(&self, code: &str) -> Result<Option<OrgRecord>> {
        sqlx::query("SELECT code, name, country, created_at FROM organizations WHERE code = $1")
            .bind(code)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(org_from_row)
            .transpose()
    }

    async fn list_orgs(&self) -> Result<Vec<OrgRecord>> {
        sqlx::query("SELECT code, name, country, created_at FROM organizations ORDER BY code")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(org_from_row)
            .collect()
    }

    async fn add_package(&self, p: &PackageRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO packages (id, org_code, environment, enrollment_type, server, \
             allow_external, url, credential_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&p.id)
        .bind(p.org.as_str())
        .bind(&p.environment)
        .bind(p.enrollment_type.as_str())
        .bind(b(p.server))
        .bind(b(p.allow_external))
        .bind(&p.url)
        .bind(&p.credential_hash)
        .bind(p.created_at.0)
        .execute(&self.writer)
        .await
        .map_err(|e| map_unique(e, format!("package {}", p.id)))?;
        Ok(())
    }

    async fn package(&self, id: &str) -> Result<Option<PackageRecord>> {
        sqlx::query("SELECT * FROM packages WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(package_from_row)
            .transpose()
    }

    async fn package_with_org(&self, id: &str) -> Result<Option<(PackageRecord, OrgRecord)>> {
        let Some(row) = sqlx::query(
            "SELECT p.*, o.name AS org_name, o.country AS org_country, \
             o.created_at AS org_created_at \
             FROM packages p JOIN organizations o ON o.code = p.org_code WHERE p.id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let package = package_from_row(&row)?;
        let country: String = row.try_get("org_country")?;
        let org = OrgRecord {
            code: package.org.clone(),
            name: row.try_get("org_name")?,
            country: CountryCode::parse(&country).map_err(|_| corrupt("country", &country))?,
            created_at: UnixTime(row.try_get("org_created_at")?),
        };
        Ok(Some((package, org)))
    }

    async fn list_packages(&self) -> Result<Vec<PackageRecord>> {
        sqlx::query("SELECT * FROM packages ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(package_from_row)
            .collect()
    }

    async fn revoke_package(&self, id: &str, at: UnixTime, audit: &AuditEvent) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let done =
            sqlx::query("UPDATE packages SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(at.0)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::NotFound(format!("an active package {id}")));
        }
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn submit(
        &self,
        r: &NewRequest,
        submitted: &AuditEvent,
        cancelled: &AuditEvent,
    ) -> Result<(RequestId, Vec<RequestId>)> {
        // A concurrent submission for the same machine that commits first
        // makes ours fail on the one-Pending index; the next try cancels it.
        let mut tries = 0;
        loop {
            match self.submit_once(r, submitted, cancelled).await {
                Err(StoreError::Duplicate(_)) if tries < 8 => tries += 1,
                Err(StoreError::Duplicate(what)) => return Err(StoreError::Conflict(what)),
                done => return done,
            }
        }
    }

    async fn request(&self, id: RequestId) -> Result<Option<RequestRecord>> {
        // The column list is a constant: nothing from outside is formatted in.
        sqlx::query(AssertSqlSafe(format!(
            "SELECT {REQUEST_COLUMNS} FROM requests WHERE id = $1"
        )))
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(request_from_row)
        .transpose()
    }

    async fn request_with_certificate(
        &self,
        id: RequestId,
    ) -> Result<Option<(RequestRecord, Option<CertRecord>)>> {
        // Column names are distinct across the two tables. The column
        // list is a constant: nothing from outside is formatted in.
        let Some(row) = sqlx::query(AssertSqlSafe(format!(
            "SELECT {REQUEST_COLUMNS}, serial, request_id, der, not_before, not_after, \
             revoked_at, revocation_reason \
             FROM requests LEFT JOIN certificates ON certificates.request_id = requests.id \
             WHERE requests.id = $1"
        )))
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let request = request_from_row(&row)?;
        let cert = match row.try_get::<Option<String>, _>("serial")? {
            Some(_) => Some(cert_from_row(&row)?),
            None => None,
        };
        Ok(Some((request, cert)))
    }

    async fn list_requests(&self, f: &RequestFilter) -> Result<Vec<RequestRecord>> {
        let text = f.text.as_deref().filter(|t| !t.is_empty());
        // The trigram index knows strings of three characters and more.
        if let (Backend::Sqlite, Some(t)) = (self.backend, text)
            && t.chars().count() >= 3
        {
            return self.search_requests(f, t).await;
        }
        self.select_requests(request_where(f, None), clamp_limit(f.limit))
            .await
    }

    async fn current_with_key(&self, spki_der: &[u8]) -> Result<Vec<RequestRecord>> {
        // Only a constant column list is formatted in.
        let sql = format!(
            "SELECT {REQUEST_COLUMNS} FROM requests \
             WHERE status IN ('Approved', 'Installed', 'Downloaded') AND spki_der = $1 \
             ORDER BY id"
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(spki_der)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(request_from_row)
            .collect()
    }

    async fn change_status(&self, c: &StatusChange) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let (decided_by, reason) = match &c.decision {
            Some((who, why)) => (Some(who.clone()), why.clone()),
            None => (None, None),
        };
        let decided_at = c.decision.as_ref().map(|_| c.at.0);
        let downloaded_at = c.downloaded_by.as_ref().map(|_| c.at.0);
        let done = sqlx::query(
            "UPDATE requests SET status = $1, \
             decided_at = COALESCE($2, decided_at), decided_by = COALESCE($3, decided_by), \
             reason = COALESCE($4, reason), downloaded_at = COALESCE($5, downloaded_at), \
             downloaded_by = COALESCE($6, downloaded_by) WHERE id = $7 AND status = $8",
        )
        .bind(c.to.as_str())
        .bind(decided_at)
        .bind(decided_by)
        .bind(reason)
        .bind(downloaded_at)
        .bind(&c.downloaded_by)
        .bind(c.id.0)
        .bind(c.from.as_str())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::Conflict(format!(
                "request {} is no longer {}",
                c.id, c.from
            )));
        }
        if let Some(cert) = &c.certificate {
            insert_cert(&mut tx, cert).await?;
        }
        if let Some((at, reason)) = &c.revocation {
            let done = sqlx::query(
                "UPDATE certificates SET revoked_at = $1, revocation_reason = $2 \
                 WHERE request_id = $3 AND revoked_at IS NULL",
            )
            .bind(at.0)
            .bind(reason)
            .bind(c.id.0)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() != 1 {
                return Err(StoreError::Conflict(format!(
                    "request {} has no unrevoked certificate",
                    c.id
                )));
            }
            if let Some(hash) = &c.block_key {
                sqlx::query(
                    "INSERT INTO blocked_keys (spki_sha256, blocked_at, request_id, reason) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (spki_sha256) DO NOTHING",
                )
                .bind(hash)
                .bind(at.0)
                .bind(c.id.0)
                .bind(reason)
                .execute(&mut *tx)
                .await?;
            }
        }
        insert_audit(&mut tx, &c.audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn blocked_key(&self, spki_sha256: &str) -> Result<Option<Option<RequestId>>> {
        let row = sqlx::query("SELECT request_id FROM blocked_keys WHERE spki_sha256 = $1")
            .bind(spki_sha256)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok(r.try_get::<Option<i64>, _>("request_id")?.map(RequestId)))
            .transpose()
    }

    async fn certificate_by_serial(&self, serial: &str) -> Result<Option<CertRecord>> {
        sqlx::query("SELECT * FROM certificates WHERE serial = $1")
            .bind(serial)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(cert_from_row)
            .transpose()
    }

    async fn certificate_for_request(&self, id: RequestId) -> Result<Option<CertRecord>> {
        sqlx::query("SELECT * FROM certificates WHERE request_id = $1")
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(cert_from_row)
            .transpose()
    }

    async fn add_certificate(&self, cert: &CertRecord) -> Result<()> {
        let mut conn = self.writer.acquire().await?;
        insert_cert(&mut conn, cert).await
    }

    async fn add_operator(
        &self,
        op: &OperatorRecord,
        pickup: Option<&CredentialPickup>,
        audit: &AuditEvent,
    ) -> Result<i64> {
        let mut tx = self.write_tx().await?;
        let row = sqlx::query(
            "INSERT INTO operators (name, role, org_code, cert_serial, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(&op.name)
        .bind(&op.role)
        .bind(op.org.as_ref().map(|o| o.as_str().to_owned()))
        .bind(&op.cert_serial)
        .bind(op.created_at.0)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| map_unique(e, format!("an active operator named {:?}", op.name)))?;
        let id: i64 = row.try_get("id")?;
        if let Some(p) = pickup {
            sqlx::query(
                "INSERT INTO credential_pickups (operator_id, p12, expires_at) VALUES ($1, $2, $3)",
            )
            .bind(id)
            .bind(&p.p12)
            .bind(p.expires_at.0)
            .execute(&mut *tx)
            .await?;
        }
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(id)
    }

    async fn operator(&self, id: i64) -> Result<Option<OperatorRecord>> {
        sqlx::query("SELECT * FROM operators WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(operator_from_row)
            .transpose()
    }

    async fn operator_by_serial(&self, serial: &str) -> Result<Option<OperatorRecord>> {
        sqlx::query("SELECT * FROM operators WHERE cert_serial = $1")
            .bind(serial)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(operator_from_row)
            .transpose()
    }

    async fn list_operators(&self) -> Result<Vec<OperatorRecord>> {
        sqlx::query("SELECT * FROM operators ORDER BY id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(operator_from_row)
            .collect()
    }

    async fn revoke_operator(
        &self,
        id: i64,
        at: UnixTime,
        reason: &str,
        audit: &AuditEvent,
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let row = sqlx::query(
            "UPDATE operators SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL \
             RETURNING cert_serial",
        )
        .bind(at.0)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("an active operator {id}")))?;
        let serial: String = row.try_get("cert_serial")?;
        sqlx::query(
            "UPDATE certificates SET revoked_at = $1, revocation_reason = $2 \
             WHERE serial = $3 AND revoked_at IS NULL",
        )
        .bind(at.0)
        .bind(reason)
        .bind(&serial)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM credential_pickups WHERE operator_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn take_credential(&self, operator_id: i64, now: UnixTime) -> Result<Option<Vec<u8>>> {
        let row = sqlx::query(
            "DELETE FROM credential_pickups WHERE operator_id = $1 RETURNING p12, expires_at",
        )
        .bind(operator_id)
        .fetch_optional(&self.writer)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let expires: i64 = row.try_get("expires_at")?;
        Ok((expires > now.0).then(|| row.try_get("p12")).transpose()?)
    }

    async fn rotate_package(
        &self,
        id: &str,
        credential_hash: &str,
        audit: &AuditEvent,
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE packages SET credential_hash = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(credential_hash)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::NotFound(format!("an active package {id}")));
        }
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn publish_crl<F, E>(
        &self,
        not_after_since: UnixTime,
        build: F,
    ) -> Result<std::result::Result<CrlRecord, E>>
    where
        F: FnOnce(i64, &[CertRecord]) -> std::result::Result<CrlRecord, E> + Send,
        E: Send,
    {
        let mut tx = self.write_tx().await?;
        if self.backend == Backend::Postgres {
            // Publishers queue here; revocations and readers go on.
            sqlx::query("LOCK TABLE crls IN SHARE ROW EXCLUSIVE MODE")
                .execute(&mut *tx)
                .await?;
        }
        let latest: Option<i64> = sqlx::query("SELECT MAX(number) AS n FROM crls")
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
        // Listed: revoked, and not expired before `not_after_since`.
        let listed = sqlx::query(
            "SELECT * FROM certificates WHERE revoked_at IS NOT NULL AND not_after >= $1 \
             ORDER BY revoked_at, serial",
        )
        .bind(not_after_since.0)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(cert_from_row)
        .collect::<Result<Vec<_>>>()?;
        let crl = match build(latest.map_or(1, |n| n.saturating_add(1)), &listed) {
            Ok(crl) => crl,
            Err(e) => return Ok(Err(e)),
        };
        sqlx::query(
            "INSERT INTO crls (number, this_update, next_update, der) VALUES ($1, $2, $3, $4)",
        )
        .bind(crl.number)
        .bind(crl.this_update.0)
        .bind(crl.next_update.0)
        .bind(&crl.der)
        .execute(&mut *tx)
        .await
        .map_err(|e| map_unique(e, format!("CRL number {}", crl.number)))?;
        tx.commit().await?;
        Ok(Ok(crl))
    }

    async fn latest_crl(&self) -> Result<Option<CrlRecord>> {
        let row = sqlx::query(
            "SELECT number, this_update, next_update, der FROM crls ORDER BY number DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(CrlRecord {
                number: r.try_get("number")?,
                this_update: UnixTime(r.try_get("this_update")?),
                next_update: UnixTime(r.try_get("next_update")?),
                der: r.try_get("der")?,
            })
        })
        .transpose()
    }

    async fn audit_for_request(&self, id: RequestId) -> Result<Vec<AuditEvent>> {
        sqlx::query("SELECT * FROM audit_events WHERE request_id = $1 ORDER BY id")
            .bind(id.0)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(audit_from_row)
            .collect()
    }

    async fn list_audit(&self, f: &AuditFilter) -> Result<Vec<AuditEntry>> {
        let mut w = Where::default();
        if let Some(o) = &f.org {
            w.push("org_code = ?", Arg::Text(o.as_str().to_owned()));
        }
        if let Some(r) = f.request_id {
            w.push("request_id = ?", Arg::Int(r.0));
        }
        if let Some(a) = f.actor.as_deref().filter(|a| !a.is_empty()) {
            w.push(
                "LOWER(actor) LIKE ? ESCAPE '\\'",
                Arg::Text(like_pattern(a)),
            );
        }
        if let Some(a) = f.action.as_deref().filter(|a| !a.is_empty()) {
            // A prefix: `refused:` lists every refusal.
            let mut p = like_pattern(a);
            p.remove(0);
            w.push("action LIKE ? ESCAPE '\\'", Arg::Text(p));
        }
        if let Some(b) = f.before {
            w.push("id < ?", Arg::Int(b));
        }
        let limit = clamp_limit(f.limit);
        // Only constants, placeholders and a clamped integer are formatted in.
        let sql = format!(
            "SELECT * FROM audit_events{} ORDER BY id DESC LIMIT {limit}",
            w.sql()
        );
        w.bind(sqlx::query(AssertSqlSafe(sql)))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok(AuditEntry {
                    id: r.try_get("id")?,
                    event: audit_from_row(r)?,
                })
            })
            .collect()
    }

    async fn check_consistency(&self) -> Result<ConsistencyReport> {
        let count = |table: &'static str| async move {
            // The table names are constants.
            let row = sqlx::query(AssertSqlSafe(format!("SELECT COUNT(*) AS n FROM {table}")))
                .fetch_one(&self.pool)
                .await?;
            Ok::<i64, StoreError>(row.try_get("n")?)
        };
        let mut report = ConsistencyReport {
            requests: count("requests").await?,
            certificates: count("certificates").await?,
            audit_events: count("audit_events").await?,
            crls: count("crls").await?,
            problems: Vec::new(),
        };
        // Each check: a query naming the offenders, and how to say it.
        let checks: [(&str, &str); 7] = [
            (
                "SELECT r.id AS id, r.status AS what FROM requests r \
                 LEFT JOIN certificates c ON c.request_id = r.id \
                 WHERE r.status IN ('Approved', 'Installed', 'Downloaded', 'Revoked') \
                 AND c.serial IS NULL ORDER BY r.id LIMIT 20",
                "is {what} but has no certificate",
            ),
            (
                "SELECT r.id AS id, r.status AS what FROM requests r \
                 JOIN certificates c ON c.request_id = r.id \
                 WHERE r.status IN ('Pending', 'Rejected', 'Cancelled') ORDER BY r.id LIMIT 20",
                "is {what} but has a certificate",
            ),
            (
                "SELECT request_id AS id, CAST(COUNT(*) AS TEXT) AS what FROM certificates \
                 WHERE request_id IS NOT NULL GROUP BY request_id HAVING COUNT(*) > 1 \
                 ORDER BY request_id LIMIT 20",
                "has {what} certificates",
            ),
            (
                "SELECT r.id AS id, r.status AS what FROM requests r \
                 JOIN certificates c ON c.request_id = r.id \
                 WHERE (r.status = 'Revoked') <> (c.revoked_at IS NOT NULL) ORDER BY r.id LIMIT 20",
                "is {what} but its certificate's revocation says otherwise",
            ),
            (
                "SELECT r.id AS id, r.status || ' / ' || COALESCE(a.to_status, 'nothing') AS what \
                 FROM requests r LEFT JOIN audit_events a ON a.id = \
                 (SELECT MAX(e.id) FROM audit_events e WHERE e.request_id = r.id \
                  AND e.to_status IS NOT NULL) \
                 WHERE a.to_status IS NULL OR a.to_status <> r.status ORDER BY r.id LIMIT 20",
                "has status and last audited status {what}",
            ),
            (
                "SELECT r.id AS id, CAST((SELECT COUNT(*) FROM audit_events e \
                 WHERE e.request_id = r.id AND e.action = 'submit') AS TEXT) AS what \
                 FROM requests r WHERE (SELECT COUNT(*) FROM audit_events e \
                 WHERE e.request_id = r.id AND e.action = 'submit') <> 1 ORDER BY r.id LIMIT 20",
                "has {what} submit events instead of one",
            ),
            (
                "SELECT a.number AS id, CAST(b.number AS TEXT) AS what FROM crls a \
                 JOIN crls b ON b.number > a.number AND b.this_update < a.this_update \
                 ORDER BY a.number LIMIT 20",
                "(CRL number) is newer than CRL {what}",
            ),
        ];
        for (sql, say) in checks {
            for row in sqlx::query(sql).fetch_all(&self.pool).await? {
                let id: i64 = row.try_get("id")?;
                let what: String = row.try_get("what")?;
                let subject = if say.starts_with('(') {
                    format!("CRL {id}")
                } else {
                    format!("request {id}")
                };
                report.problems.push(format!(
                    "{subject} {}",
                    say.trim_start_matches("(CRL number) ")
                        .replace("{what}", &what)
                ));
            }
        }
        Ok(report)
    }

    async fn audit(&self, event: &AuditEvent) -> Result<()> {
        let mut conn = self.writer.acquire().await?;
        insert_audit(&mut conn, event).await
    }
}

impl SqlStore {
    /// One try of [`Store::submit`]: cancel the machine's Pending request
    /// (same organization, environment and common name), insert the new
    /// one, name it in the cancelled one's reason, audit.
    async fn submit_once(
        &self,
        r: &NewRequest,
        submitted: &AuditEvent,
        cancelled: &AuditEvent,
    ) -> Result<(RequestId, Vec<RequestId>)> {
        let s = &r.subject;
        let mut tx = self.write_tx().await?;
        let rows = sqlx::query(
            "UPDATE requests SET status = $1, decided_at = $2, decided_by = $3, reason = $4 \
             WHERE org_code = $5 AND common_name = $6 AND status = $7 AND environment = $8 \
             RETURNING id",
        )
        .bind(RequestStatus::Cancelled.as_str())
        .bind(r.submitted_at.0)
        .bind(&cancelled.actor)
        .bind("superseded")
        .bind(s.organization.as_str())
        .bind(&s.common_name)
        .bind(RequestStatus::Pending.as_str())
        .bind(&r.environment)
        .fetch_all(&mut *tx)
        .await?;
        let mut gone = Vec::with_capacity(rows.len());
        for row in rows {
            gone.push(RequestId(row.try_get("id")?));
        }
        // The column list is a constant: nothing from outside is formatted in.
        let insert = format!(
            "INSERT INTO requests ({NEW_REQUEST_COLUMNS}) VALUES {} RETURNING id",
            placeholders(1, NEW_REQUEST_COLUMN_COUNT)
        );
        let row = bind_new_request(
            sqlx::query(AssertSqlSafe(insert)),
            r,
            RequestStatus::Pending,
        )
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| {
            map_unique(
                e,
                format!(
                    "a Pending request of {} {} submitted at the same moment",
                    s.organization, s.common_name
                ),
            )
        })?;
        let id = RequestId(row.try_get("id")?);
        let mut ev = submitted.clone();
        ev.request_id = Some(id);
        insert_audit(&mut tx, &ev).await?;
        let why = format!("superseded by request {id}");
        for old in &gone {
            sqlx::query("UPDATE requests SET reason = $1 WHERE id = $2")
                .bind(&why)
                .bind(old.0)
                .execute(&mut *tx)
                .await?;
            let mut ev = cancelled.clone();
            ev.request_id = Some(*old);
            ev.detail = Some(why.clone());
            insert_audit(&mut tx, &ev).await?;
        }
        tx.commit().await?;
        gone.sort();
        Ok((id, gone))
    }

    /// Inserts many certificates at once, revocation fields included. For
    /// benchmarks that need a large store fast; not part of the [`Store`]
    /// contract the use cases rely on.
    pub async fn bulk_insert_certificates(&self, certs: &[CertRecord]) -> Result<()> {
        let mut tx = self.write_tx().await?;
        for chunk in certs.chunks(500) {
            let sql = format!(
                "INSERT INTO certificates (serial, request_id, der, not_before, not_after, \
                 revoked_at, revocation_reason) VALUES {}",
                placeholders(chunk.len(), 7)
            );
            // Only placeholders are formatted in.
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for c in chunk {
                q = q
                    .bind(&c.serial)
                    .bind(c.request_id.map(|i| i.0))
                    .bind(&c.der)
                    .bind(c.not_before.0)
                    .bind(c.not_after.0)
                    .bind(c.revoked_at.map(|t| t.0))
                    .bind(&c.revocation_reason);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Inserts many requests at once with the statuses given and no audit
    /// events: fixtures for benchmarks that need a million-row queue. Not
    /// part of the [`Store`] contract; it skips what `submit` keeps (the
    /// audit trail, auto-cancel), so `enrolld check` will list these rows.
    pub async fn bulk_insert_requests(&self, rows: &[(NewRequest, RequestStatus)]) -> Result<()> {
        let mut tx = self.write_tx().await?;
        // 27 columns x 300 rows stays under both databases' limits on
        // bound parameters (SQLite 32766, PostgreSQL 65535).
        for chunk in rows.chunks(300) {
            // Only constants and placeholders are formatted in.
            let sql = format!(
                "INSERT INTO requests ({NEW_REQUEST_COLUMNS}) VALUES {}",
                placeholders(chunk.len(), NEW_REQUEST_COLUMN_COUNT)
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for (r, status) in chunk {
                q = bind_new_request(q, r, *status);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Requests matching `w`, newest first, at most `limit`.
    async fn select_requests(&self, w: Where, limit: u32) -> Result<Vec<RequestRecord>> {
        // Only constants, placeholders and a clamped integer are formatted in.
        let sql = format!(
            "SELECT {REQUEST_COLUMNS} FROM requests{} ORDER BY id DESC LIMIT {limit}",
            w.sql()
        );
        w.bind(sqlx::query(AssertSqlSafe(sql)))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(request_from_row)
            .collect()
    }

    /// The queue with a text filter on SQLite, in two steps. First the
    /// newest `WINDOW` requests the other filters let through are tested
    /// directly: a common word (a requester among the Pending) fills the
    /// page there. Below that window, the trigram index names candidate
    /// ids newest first, in growing batches, each filtered like any page
    /// (the LIKE test stays the authority), until the page is full or the
    /// index has no more: a rare word costs its few hits, not a scan.
    async fn search_requests(&self, f: &RequestFilter, text: &str) -> Result<Vec<RequestRecord>> {
        const WINDOW: i64 = 500;
        let limit = clamp_limit(f.limit);
        let without_text = RequestFilter {
            text: None,
            ..f.clone()
        };
        // The window's lowest id and size: index only, no row read.
        let w = request_where(&without_text, None);
        // Only constants and placeholders are formatted in.
        let sql = format!(
            "SELECT MIN(id) AS low, COUNT(*) AS n FROM \
             (SELECT id FROM requests{} ORDER BY id DESC LIMIT {WINDOW})",
            w.sql()
        );
        let row = w
            .bind(sqlx::query(AssertSqlSafe(sql)))
            .fetch_one(&self.pool)
            .await?;
        let (low, n): (Option<i64>, i64) = (row.try_get("low")?, row.try_get("n")?);
        let Some(low) = low else {
            return Ok(Vec::new());
        };
        let mut w = request_where(f, None);
        w.push("id >= ?", Arg::Int(low));
        let mut out = self.select_requests(w, limit).await?;
        if out.len() >= limit as usize || n < WINDOW {
            return Ok(out);
        }
        // An FTS5 string: the words as one phrase, quotes doubled.
        let phrase = format!("\"{}\"", text.to_lowercase().replace('"', "\"\""));
        let mut below = low;
        let mut batch: i64 = 1024;
        loop {
            let hits: Vec<i64> = sqlx::query(
                "SELECT rowid FROM requests_search WHERE requests_search MATCH $1 \
                 AND rowid < $2 ORDER BY rowid DESC LIMIT $3",
            )
            .bind(&phrase)
            .bind(below)
            .bind(batch)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| r.try_get::<i64, _>(0))
            .collect::<std::result::Result<_, _>>()?;
            let Some(&lowest) = hits.last() else { break };
            let mut w = request_where(f, Some(below));
            // Integers the database just gave: nothing from outside.
            w.clauses.push(format!(
                "id IN ({})",
                hits.iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            let want = limit - u32::try_from(out.len()).unwrap_or(limit);
            out.extend(self.select_requests(w, want).await?);
            if out.len() >= limit as usize || (hits.len() as i64) < batch {
                break;
            }
            below = lowest;
            batch = (batch * 2).min(16_384);
        }
        Ok(out)
    }

    /// A write transaction: on the writer pool, IMMEDIATE on SQLite.
    async fn write_tx(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(match self.backend {
            Backend::Sqlite => self.writer.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.writer.begin().await?,
        })
    }

    /// Which database this store talks to, for logs and `--json` output.
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}
