-- A perceptual hash (64-bit dHash, as a signed bigint) of every stored photo: a photo reused from
-- another case, or an "after" photo that is the case's own "before", is flagged (reused_photo).
-- NULL for other kinds, for featureless pictures, and for photos stored before this column.
ALTER TABLE media_objects ADD COLUMN dhash bigint;
