-- Where the phone was when a photo was attached as evidence from the mobile work page
-- (navigator.geolocation, WGS-84) and how sure it was: metadata beside the EXIF's own position,
-- which cameras often leave out or strip. NULL when the page had no location (refused, no signal).
ALTER TABLE media
    ADD COLUMN device_lat         double precision CHECK (device_lat BETWEEN -90 AND 90),
    ADD COLUMN device_lng         double precision CHECK (device_lng BETWEEN -180 AND 180),
    ADD COLUMN device_accuracy_m  double precision CHECK (device_accuracy_m >= 0),
    ADD COLUMN attached_by        text;

-- The case's grid (网格), as its report and case events say: a grid worker's division is their
-- grid, so whether they may see and add to a case's evidence is decided by it, as dispatch does.
ALTER TABLE cases ADD COLUMN grid_code text;
