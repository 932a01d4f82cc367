-- The web application: audit by organization, operator credentials picked
-- up once, and the indexes the approvers' queue pages walk. Keep in step
-- with ../postgres/0002_web.sql.

-- The organization an audit event concerns, so organization managers see
-- their own trail and nothing else. NULL: the central administrator's only.
ALTER TABLE audit_events ADD COLUMN org_code TEXT;
CREATE INDEX audit_org ON audit_events (org_code, id);

-- One active operator per name: the audit trail names operators.
CREATE UNIQUE INDEX operators_active_name ON operators (name) WHERE revoked_at IS NULL;

-- A new operator's PKCS#12 (encrypted with the one-time passphrase that
-- was shown once and is kept nowhere), waiting to be downloaded once.
CREATE TABLE credential_pickups (
    operator_id  BIGINT PRIMARY KEY REFERENCES operators(id),
    p12          BLOB NOT NULL,
    expires_at   BIGINT NOT NULL
);

-- Queue pages: newest first within an organization, a status, a kind.
CREATE INDEX requests_org_status_id ON requests (org_code, status, id);
CREATE INDEX requests_kind_status_id ON requests (kind, status, id);
