-- Phone ciphertext names the key that made it (shared.phones): '<key id>:<base64(nonce ‖ ciphertext)>',
-- so keys can be rotated. Rows from before key ids were made with the first key, k1.
ALTER TABLE reports ADD COLUMN reporter_phone_token text;
UPDATE reports
   SET reporter_phone_token = 'k1:' || replace(encode(reporter_phone_encrypted, 'base64'), E'\n', '')
 WHERE reporter_phone_encrypted IS NOT NULL;
ALTER TABLE reports DROP COLUMN reporter_phone_encrypted;
