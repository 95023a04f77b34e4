-- Report photos the channel holds (WeChat PicUrl, Open311 media_url): fetched from allowed hosts,
-- retried a few times when the host does not answer.
ALTER TABLE incoming_photos
    ADD COLUMN url      text,
    ADD COLUMN attempts integer NOT NULL DEFAULT 0;
