-- Enroll schema, PostgreSQL flavour. Keep in step with ../sqlite/0001_init.sql.
-- Times are Unix seconds (BIGINT): sqlx's Any driver maps no time types.
CREATE TABLE organizations (
    code        TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    country     TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE packages (
    id               TEXT PRIMARY KEY,
    org_code         TEXT NOT NULL REFERENCES organizations(code),
    environment      TEXT NOT NULL,
    enrollment_type  TEXT NOT NULL,
    server           BIGINT NOT NULL,
    allow_external   BIGINT NOT NULL,
    url              TEXT NOT NULL,
    credential_hash  TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    revoked_at       BIGINT
);

CREATE TABLE requests (
    id                BIGSERIAL PRIMARY KEY,
    org_code          TEXT NOT NULL REFERENCES organizations(code),
    package_id        TEXT NOT NULL REFERENCES packages(id),
    kind              TEXT NOT NULL,
    enrollment_type   TEXT NOT NULL,
    status            TEXT NOT NULL,
    common_name       TEXT NOT NULL,
    email             TEXT,
    country           TEXT NOT NULL,
    state             TEXT,
    locality          TEXT,
    organization_unit TEXT NOT NULL,
    key_desc          TEXT NOT NULL,
    key_length        BIGINT,
    csr_der           BYTEA NOT NULL,
    spki_der          BYTEA NOT NULL,
    -- Requested alternative names, one per line: DNS:name or IP:address.
    alt_names         TEXT,
    fqdn              TEXT,
    mac               TEXT,
    nic_id            TEXT,
    processor_id      TEXT,
    os_version        TEXT,
    os_type           TEXT,
    requester         TEXT,
    source_addr       TEXT,
    phone             TEXT,
    description       TEXT,
    submitted_at      BIGINT NOT NULL,
    decided_at        BIGINT,
    decided_by        TEXT,
    reason            TEXT,
    downloaded_at     BIGINT,
    downloaded_by     TEXT
);
CREATE INDEX requests_status_id ON requests (status, id);
CREATE INDEX requests_org_cn ON requests (org_code, common_name, status);

CREATE TABLE certificates (
    serial             TEXT PRIMARY KEY,
    request_id         BIGINT REFERENCES requests(id),
    der                BYTEA NOT NULL,
    not_before         BIGINT NOT NULL,
    not_after          BIGINT NOT NULL,
    revoked_at         BIGINT,
    revocation_reason  TEXT
);
-- One certificate per request, whatever races.
CREATE UNIQUE INDEX certificates_request ON certificates (request_id) WHERE request_id IS NOT NULL;

CREATE TABLE audit_events (
    id           BIGSERIAL PRIMARY KEY,
    at           BIGINT NOT NULL,
    actor        TEXT NOT NULL,
    role         TEXT NOT NULL,
    source_addr  TEXT,
    request_id   BIGINT,
    action       TEXT NOT NULL,
    from_status  TEXT,
    to_status    TEXT,
    detail       TEXT
);
CREATE INDEX audit_request ON audit_events (request_id, id);

CREATE TABLE operators (
    id           BIGSERIAL PRIMARY KEY,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL,
    org_code     TEXT REFERENCES organizations(code),
    cert_serial  TEXT NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    revoked_at   BIGINT
);

-- Every CRL issued. The primary key makes CRL numbers unique across all
-- nodes; a node that loses the race builds again with the next number.
CREATE TABLE crls (
    number       BIGINT PRIMARY KEY,
    this_update  BIGINT NOT NULL,
    next_update  BIGINT NOT NULL,
    der          BYTEA NOT NULL
);
CREATE INDEX certificates_revoked ON certificates (revoked_at) WHERE revoked_at IS NOT NULL;
