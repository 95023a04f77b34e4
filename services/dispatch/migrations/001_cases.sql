-- The case: one per problem, owned by dispatch. Its history is the timeline (and the case topic).
CREATE TABLE cases (
    case_id                      uuid PRIMARY KEY,
    report_id                    uuid        NOT NULL,
    jurisdiction_code            text        NOT NULL,
    status                       text        NOT NULL,
    category                     text        NOT NULL,
    priority                     text        NOT NULL,
    department_code              text,
    description                  text        NOT NULL,
    lat                          double precision,
    lng                          double precision,
    responsibility_list_version  text,
    rule                         text,
    created_at                   timestamptz NOT NULL,
    updated_at                   timestamptz NOT NULL
);
CREATE INDEX cases_status ON cases (status);
CREATE INDEX cases_department ON cases (department_code, status);

CREATE TABLE case_timeline (
    id        bigserial PRIMARY KEY,
    case_id   uuid        NOT NULL REFERENCES cases (case_id),
    at        timestamptz NOT NULL,
    action    text        NOT NULL,
    status    text        NOT NULL,
    actor     text        NOT NULL,
    detail    jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX case_timeline_case ON case_timeline (case_id, id);
