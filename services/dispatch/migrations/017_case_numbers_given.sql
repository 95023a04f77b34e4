-- Every case number intake gave out in the county, and the centre that took its report: the county
-- centre reads every report, so with town or village centres it alone can tell that no centre holds
-- a number a member of staff typed into a WeCom command, and say so (the others stay silent).
CREATE TABLE case_numbers_given (
    case_no     text PRIMARY KEY,
    owner_code  text        NOT NULL,
    given_at    timestamptz NOT NULL DEFAULT now()
);
