-- A handler waiting for the reporter to say more (待补充): the resolution clock pauses meanwhile.
ALTER TABLE cases ADD COLUMN awaiting_reporter boolean NOT NULL DEFAULT false;
