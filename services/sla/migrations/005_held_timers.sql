-- Why a timer waits: 'pause' (an extension request, a question to the reporter: only the
-- resolution clock) or 'hold' (a returned case awaiting the dispatcher's ruling: every clock), so
-- each is resumed only by its own answer.
ALTER TABLE timers ADD COLUMN paused_by text;
UPDATE timers SET paused_by = 'pause' WHERE paused_at IS NOT NULL;
