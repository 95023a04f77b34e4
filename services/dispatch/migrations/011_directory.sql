-- The directory (通讯录): staff, their roles in divisions and departments, and each department's
-- duty roster (值班表). Mobiles are kept as reporters' phones are: AES-GCM ciphertext, a keyed hash
-- to find someone by number, and the masked form (138****1234) to show; never in clear.
CREATE TABLE people (
    person_id         text PRIMARY KEY,          -- the identity provider's subject (sub)
    name              text NOT NULL,
    wecom_user_id     text UNIQUE,               -- to @ them in WeCom groups
    mobile_encrypted  bytea,
    mobile_hash       bytea,
    mobile_masked     text,
    active            boolean NOT NULL DEFAULT true,
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX people_mobile_hash ON people (mobile_hash);

-- What a person is, where: dispatcher, handler (of a department), supervisor (督查室), grid_worker
-- (网格员), grid_leader (网格长), group_owner (网长), admin; '' when no department applies.
CREATE TABLE person_roles (
    person_id          text NOT NULL REFERENCES people (person_id) ON DELETE CASCADE,
    role               text NOT NULL,
    jurisdiction_code  text NOT NULL,
    department_code    text NOT NULL DEFAULT '',
    PRIMARY KEY (person_id, role, jurisdiction_code, department_code)
);
CREATE INDEX person_roles_place ON person_roles (jurisdiction_code, role);

-- One shift of a department's duty roster: who is on duty and who backs them up, from .. to.
-- Shifts of one department in one division do not overlap (checked under an advisory lock).
CREATE TABLE duty_shifts (
    shift_id           uuid PRIMARY KEY,
    department_code    text NOT NULL,
    jurisdiction_code  text NOT NULL,
    starts_at          timestamptz NOT NULL,
    ends_at            timestamptz NOT NULL,
    on_duty            text NOT NULL REFERENCES people (person_id),
    backup             text REFERENCES people (person_id),
    CHECK (ends_at > starts_at),
    CHECK (backup IS NULL OR backup <> on_duty)
);
CREATE INDEX duty_shifts_department ON duty_shifts (department_code, jurisdiction_code, starts_at);

-- Every change to the directory and rosters: who, when, what (mobiles masked).
CREATE TABLE directory_audit (
    audit_id  bigserial PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    actor     text NOT NULL,
    action    text NOT NULL,
    subject   text NOT NULL,
    detail    jsonb NOT NULL
);
CREATE INDEX directory_audit_subject ON directory_audit (subject, at);
