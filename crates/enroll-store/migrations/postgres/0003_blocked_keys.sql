-- Keys reported compromised: a certificate revoked for keyCompromise puts
-- the SHA-256 of its SubjectPublicKeyInfo here, and no request with that
-- key is accepted or approved again. Keep in step with
-- ../sqlite/0003_blocked_keys.sql.
CREATE TABLE blocked_keys (
    spki_sha256  TEXT PRIMARY KEY,
    blocked_at   BIGINT NOT NULL,
    request_id   BIGINT,
    reason       TEXT NOT NULL
);
