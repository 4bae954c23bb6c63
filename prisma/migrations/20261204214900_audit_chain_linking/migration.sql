-- Audit events are inserted unchained, inside the transaction of the change they record, and a
-- chainer links them afterwards. The trigger therefore allows one kind of UPDATE: setting seq,
-- prev_hash and hash on a row that has no seq yet, with every recorded fact left as it was.
CREATE OR REPLACE FUNCTION "audit_events_reject_change"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND OLD.seq IS NULL AND NEW.seq IS NOT NULL
     AND (NEW.id, NEW.at, NEW.type, NEW.user_id, NEW.session_id, NEW.device_id, NEW.ip, NEW.reason, NEW.data, NEW.actor)
         IS NOT DISTINCT FROM
         (OLD.id, OLD.at, OLD.type, OLD.user_id, OLD.session_id, OLD.device_id, OLD.ip, OLD.reason, OLD.data, OLD.actor) THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'audit_events is append-only: % is not allowed', TG_OP
    USING ERRCODE = 'insufficient_privilege', HINT = 'Audit events are hash-chained; record a new event instead.';
END
$$;
