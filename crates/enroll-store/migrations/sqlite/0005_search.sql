-- The approvers' text search (common name, requester, description) by
-- substring, indexed: a trigram full-text index kept in step with the
-- requests by triggers. The store asks it for candidate ids, newest first,
-- and keeps the LIKE test as the authority. Keep in step with
-- ../postgres/0005_search.sql.
CREATE VIRTUAL TABLE requests_search USING fts5(
    common_name, requester, description,
    content = 'requests', content_rowid = 'id', tokenize = 'trigram'
);
INSERT INTO requests_search (requests_search) VALUES ('rebuild');

CREATE TRIGGER requests_search_insert AFTER INSERT ON requests BEGIN
    INSERT INTO requests_search (rowid, common_name, requester, description)
    VALUES (new.id, new.common_name, new.requester, new.description);
END;

CREATE TRIGGER requests_search_delete AFTER DELETE ON requests BEGIN
    INSERT INTO requests_search (requests_search, rowid, common_name, requester, description)
    VALUES ('delete', old.id, old.common_name, old.requester, old.description);
END;

CREATE TRIGGER requests_search_update AFTER UPDATE OF common_name, requester, description
ON requests BEGIN
    INSERT INTO requests_search (requests_search, rowid, common_name, requester, description)
    VALUES ('delete', old.id, old.common_name, old.requester, old.description);
    INSERT INTO requests_search (rowid, common_name, requester, description)
    VALUES (new.id, new.common_name, new.requester, new.description);
END;
