-- Plates past their retention become pseudonyms ('pseudo:' and 32 hex digits, a keyed
-- hash: core.privacy.pseudonyms), in the plate and its matching key alike.
-- depends: parking_0005_action_photos

ALTER TABLE parking_sessions DROP CONSTRAINT parking_sessions_plate_key_check;
ALTER TABLE parking_sessions ADD CONSTRAINT parking_sessions_plate_key_check
    CHECK (plate_key ~ '^[A-Z0-9]{2,12}$' OR plate_key ~ '^pseudo:[0-9a-f]{32}$');
ALTER TABLE parking_sessions ADD CONSTRAINT parking_sessions_plate_pseudonymised
    CHECK ((plate_key LIKE 'pseudo:%') = (plate LIKE 'pseudo:%'));

ALTER TABLE enforcement_actions DROP CONSTRAINT enforcement_actions_plate_key_check;
ALTER TABLE enforcement_actions ADD CONSTRAINT enforcement_actions_plate_key_check
    CHECK (plate_key ~ '^[A-Z0-9]{2,12}$' OR plate_key ~ '^pseudo:[0-9a-f]{32}$');
ALTER TABLE enforcement_actions ADD CONSTRAINT enforcement_actions_plate_pseudonymised
    CHECK (plate_key IS NULL OR (plate_key LIKE 'pseudo:%') = (plate LIKE 'pseudo:%'));
