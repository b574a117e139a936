-- Device tags: a technician's labels, key → value (the shape of ChirpStack's device tags).
-- depends: devices_0006_downlinks

ALTER TABLE devices
    ADD COLUMN tags jsonb NOT NULL DEFAULT '{}' CONSTRAINT devices_tags_object
        CHECK (jsonb_typeof(tags) = 'object');
CREATE INDEX devices_tags ON devices USING gin (tags);
