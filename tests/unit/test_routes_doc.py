"""ROUTES.md (the closing note's list of every route and who may call it) is generated from the
route tables by devtools.routes: it lists every route once, and its role rules name real routes."""

import inspect

from devtools.routes import ANY_STAFF, APPS, ROLE_RULES, markdown, route_access
from shared.case_actions import ACTIONS
from tests.unit.test_routes import PUBLIC, ROUTES


def test_every_route_of_every_service_is_listed_once_with_who_may_call_it():
    listed = [(r.service, r.method, r.path) for r in route_access()]
    assert sorted(listed) == sorted((service, method, route.path) for service, _, method, route in ROUTES)
    assert len(set(listed)) == len(listed)
    for r in route_access():
        public = (r.service, r.method, r.path) in PUBLIC
        assert r.who.startswith("anyone (public): ") == public, r


def test_role_rules_name_private_routes_that_exist():
    routes = {(r.service, r.method, r.path) for r in route_access()}
    assert set(ROLE_RULES) <= routes - PUBLIC


def test_case_actions_are_listed_with_their_specs_roles():
    by_path = {r.path: r for r in route_access() if r.service == "dispatch"}
    for spec in ACTIONS.values():
        row = by_path[f"/api/v1/cases/{{case_id}}/{spec.path}"]
        assert spec.label in row.what
        assert set(row.who.split(" (")[0].split(", ")) == (spec.roles - {"system"}) | {"admin"}


def test_the_markdown_has_one_table_row_per_route():
    rows = [line for line in markdown().splitlines() if line.startswith("| ") and "`" in line]
    assert len(rows) == len(list(route_access()))


# How a handler refuses a role. Narrowing what a role sees (`actor.role == "handler"`, `_authorize_case`
# by division and department) is not a refusal: such routes are open to any staff role.
REFUSALS = ("actor.role not in", "actor.role !=", " authorize_", "_ROLES")


def test_a_route_whose_handler_checks_roles_is_not_listed_as_open_to_any_staff_role():
    """Role checks live in the handlers; one that refuses roles must have its rule in ROLE_RULES."""
    from fastapi.routing import iter_route_contexts

    endpoints = {}
    for service, factory in APPS.items():
        for route in iter_route_contexts(factory().routes):
            for method in route.methods or ():
                endpoints[(service, method, route.path)] = route.endpoint
    for r in route_access():
        if r.who == ANY_STAFF:
            source = inspect.getsource(endpoints[(r.service, r.method, r.path)])
            assert not any(check in source for check in REFUSALS), r
