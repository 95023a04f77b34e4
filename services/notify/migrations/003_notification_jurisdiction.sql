-- Where each notification's subject is, for the envelope of its notification.sent/failed event:
-- the division of the case event it answers, or the grid of the broadcast group it goes to.
-- NULL (rows from before) stands for the division this instance serves.
ALTER TABLE notifications ADD COLUMN jurisdiction_code text;
