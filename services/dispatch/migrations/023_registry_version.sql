-- The command-centre board keeps an area's units and its map per version of the registry's copy
-- (services/dispatch/console/queries.py, Areas): every transaction that writes units or
-- departments bumps the version once (the first of its statements; the others see their own
-- transaction's id in `txid`), and it is read again only when the version moved.
CREATE TABLE registry_version (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    version    bigint NOT NULL,
    txid       xid8                -- the transaction that bumped it last
);
INSERT INTO registry_version (version) VALUES (0);

CREATE FUNCTION registry_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE registry_version SET version = version + 1, txid = pg_current_xact_id()
    WHERE txid IS DISTINCT FROM pg_current_xact_id();
    RETURN NULL;
END
$$;
CREATE TRIGGER units_registry_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON units
    FOR EACH STATEMENT EXECUTE FUNCTION registry_changed();
CREATE TRIGGER departments_registry_version
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON departments
    FOR EACH STATEMENT EXECUTE FUNCTION registry_changed();
