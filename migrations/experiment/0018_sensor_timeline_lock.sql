-- One lock per sensor's conversion timeline (docs/telemetry.md, "Backfill"). Ingest holds it
-- shared from before it reads the sensor's profiles until its batch commits, and so does each
-- backfill chunk; publishing a profile for a past start holds it alone while it cuts the
-- timeline. So the backfill of a publish finds every batch converted by the old timeline already
-- stored (the publish waited for it), and every batch stored after the publish reads the new one.
CREATE FUNCTION lock_sensor_timeline(sensor uuid) RETURNS void LANGUAGE sql
BEGIN ATOMIC
    SELECT pg_advisory_xact_lock(hashtextextended('sensor_timeline:' || sensor, 0));
END;

CREATE FUNCTION telemetry_seam.share_sensor_timeline(sensor uuid) RETURNS void LANGUAGE sql
BEGIN ATOMIC
    SELECT pg_advisory_xact_lock_shared(hashtextextended('sensor_timeline:' || sensor, 0));
END;
