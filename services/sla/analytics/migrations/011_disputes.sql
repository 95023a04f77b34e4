-- 退单 arbitration (issue 19): a returned round waits for the dispatcher's ruling instead of ending;
-- an overruled return (the department was wrong to return it) is counted on the round it was held in.
ALTER TABLE rounds ADD COLUMN returns_overruled integer NOT NULL DEFAULT 0;
