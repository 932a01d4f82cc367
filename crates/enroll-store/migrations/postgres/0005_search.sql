-- The approvers' text search (common name, requester, description) by
-- substring, indexed: trigram indexes on exactly the expressions the
-- queue's LIKE tests use, so the planner can combine them. pg_trgm ships
-- with PostgreSQL and is a trusted extension (a database owner may create
-- it); where it cannot be created, search still works, by scanning, and a
-- warning says why. Keep in step with ../sqlite/0005_search.sql.
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
EXCEPTION WHEN OTHERS THEN
    RAISE WARNING 'pg_trgm is not available (%): the queue''s text search scans the table', SQLERRM;
END
$$;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
        CREATE INDEX requests_search_cn ON requests
            USING gin (LOWER(common_name) gin_trgm_ops);
        CREATE INDEX requests_search_requester ON requests
            USING gin (LOWER(COALESCE(requester, '')) gin_trgm_ops);
        CREATE INDEX requests_search_description ON requests
            USING gin (LOWER(COALESCE(description, '')) gin_trgm_ops);
    END IF;
END
$$;
