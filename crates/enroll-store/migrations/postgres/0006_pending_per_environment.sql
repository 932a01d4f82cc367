-- A machine has one Pending request per environment: packages of Prod and
-- Test sit side by side on one machine, and a Test request must not cancel
-- the Prod one. The environment is the package's, copied onto the request
-- so that the unique index can hold it. Keep in step with
-- ../sqlite/0006_pending_per_environment.sql.
ALTER TABLE requests ADD COLUMN environment TEXT NOT NULL DEFAULT '';
UPDATE requests SET environment = COALESCE(
    (SELECT environment FROM packages WHERE packages.id = requests.package_id), '');
DROP INDEX requests_one_pending;
CREATE UNIQUE INDEX requests_one_pending ON requests (org_code, environment, common_name)
    WHERE status = 'Pending';
