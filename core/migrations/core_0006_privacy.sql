-- The audit trail stays append-only for everyone, but for the owner's retention and
-- data-protection work (core.privacy.trail) in a transaction that set
-- civicsense.audit_rewrite: it may drop entries past their retention and rewrite what an
-- entry says of a plate or a person (actor, target, details), never when or what was done.
-- depends: core_0005_readings_hourly

DROP TRIGGER audit_log_append_only ON audit_log;

CREATE FUNCTION audit_log_rewrite_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('civicsense.audit_rewrite', true), '') <> 'on' THEN
        RAISE EXCEPTION 'the audit trail is append-only' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    IF (NEW.id, NEW.at, NEW.tenant_id, NEW.actor_kind, NEW.actor_id, NEW.action, NEW.outcome,
        NEW.source) IS DISTINCT FROM (OLD.id, OLD.at, OLD.tenant_id, OLD.actor_kind,
        OLD.actor_id, OLD.action, OLD.outcome, OLD.source) THEN
        RAISE EXCEPTION 'an audit entry may only have its actor, target and details rewritten'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_rewrite_guard();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();
