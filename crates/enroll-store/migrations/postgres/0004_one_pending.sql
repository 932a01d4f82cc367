-- At most one Pending request per machine (organization and common name).
-- Submitting cancels the earlier Pending request in the same transaction;
-- this index makes that hold when several nodes take submissions for the
-- same machine at once (the later one waits, fails, and retries, cancelling
-- the first). Keep in step with ../sqlite/0004_one_pending.sql.
CREATE UNIQUE INDEX requests_one_pending ON requests (org_code, common_name)
    WHERE status = 'Pending';
