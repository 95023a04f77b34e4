"""Property-based fuzzing of every service's HTTP API from its own OpenAPI (schemathesis): each
service runs with uvicorn against the real servers, and every operation gets a bounded number of
generated requests, valid and invalid, once without credentials and once with an admin's token
(an admin passes the most checks, so the most code runs). No answer may be a 5xx, and every 4xx
must be problem+json whose `status` is the HTTP status, as a client of any service can rely on.

The console is left out: it serves HTML pages and forms, not an OpenAPI (it has no /docs).
Hypothesis runs derandomized (the same requests every run) with no example database, so a failure
here reproduces on any machine; the failure message carries the request as a curl command."""

import asyncio
import json
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import timedelta

import httpx
import pytest
import requests
import schemathesis
from fastapi.routing import iter_route_contexts
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from services.dispatch.app import create_app as dispatch_app
from services.intake.app import create_app as intake_app
from services.intake.settings import IntakeSettings
from services.media.app import create_app as media_app
from services.notify.app import create_app as notify_app
from services.sla.app import create_app as sla_app
from shared.problems import PROBLEM_JSON
from shared.web import public_reason
from tests.support import bearer, serving

APPS = {"intake": intake_app, "dispatch": dispatch_app, "sla": sla_app, "notify": notify_app, "media": media_app}

# Intake's per-IP limit would turn most generated requests into 429s (every request comes from
# 127.0.0.1); the limit has its own tests, here it would only hide the code behind it.
OVERRIDES = {"intake": {"intake_rate_limit_ip_per_minute": 1_000_000, "intake_rate_limit_phone_per_hour": 1_000_000}}

# Generated requests per operation and caller: enough to reach each route's validation and its
# main branches, few enough that the five services take about a minute together.
EXAMPLES = 25
# A private route without a token answers 401 before it reads anything: a few requests show it.
EXAMPLES_WITHOUT_TOKEN = 3

# The one exception to problem+json: Open311 GeoReport v2 answers its errors in the standard's own
# format (a list of {code, description}, JSON or XML), which 311 clients parse. Problem+json is
# still accepted there for the answers every route shares (413 for a body too large, 422 for a
# file where text belongs or for U+0000).
# Notify's platform callbacks need no exception: they answer their successes in plain text, as the
# platforms expect, but refuse a request with problem+json like every other route.
OPEN311_PREFIX = "/open311/v2/"


def test_the_exception_still_names_real_routes():
    paths = [route.path for route in iter_route_contexts(intake_app(IntakeSettings()).routes)]
    assert any(path.startswith(OPEN311_PREFIX) for path in paths)


def open311_error(response: schemathesis.Response) -> bool:
    """An Open311 error list whose code is the HTTP status, in JSON or XML."""
    try:
        if response.content.lstrip().startswith(b"<"):
            root = ET.fromstring(response.content)
            codes = [error.findtext("code") for error in root.iter("error")]
            return root.tag == "errors" and codes != [] and all(code == str(response.status_code) for code in codes)
        body = json.loads(response.content)
    except (ValueError, ET.ParseError):
        return False
    return (
        isinstance(body, list)
        and body != []
        and all(isinstance(e, dict) and e.get("code") == response.status_code and "description" in e for e in body)
    )


def violation(response: schemathesis.Response, path: str) -> str | None:
    """What is wrong with an answer, or None."""
    status = response.status_code
    if status >= 500:
        return f"answered {status}"
    if status < 400:
        return None
    media_type = (response.headers.get("content-type") or [""])[0].split(";")[0].strip()
    if media_type == PROBLEM_JSON:
        try:
            body = json.loads(response.content)
        except ValueError:
            return f"answered {status} with a problem+json body that is not JSON"
        if not isinstance(body, dict) or body.get("status") != status:
            return f"answered {status} with a problem whose status is not {status}: {body!r}"
        return None
    if path.startswith(OPEN311_PREFIX) and open311_error(response):
        return None
    return f"answered {status} as {media_type or 'no content type'}, not problem+json: {response.content[:200]!r}"


def public_operations(app) -> set[tuple[str, str]]:
    """(METHOD, path) of the app's public routes: the ones worth fuzzing without a token."""
    routes = iter_route_contexts(app.routes)
    return {(method, route.path) for route in routes if public_reason(route) for method in route.methods}


def fuzz_operation(operation, *, base_url: str, session, headers: dict[str, str], examples: int, statuses: Counter):
    """Send generated requests (valid and invalid) to one operation; raises on the first bad answer,
    after Hypothesis has shrunk it to the simplest request that still fails."""
    strategy = st.one_of(
        operation.as_strategy(schemathesis.GenerationMode.POSITIVE),
        operation.as_strategy(schemathesis.GenerationMode.NEGATIVE),
    )

    @hypothesis_settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        # Generous for one request on a loaded machine: it is there for a request that hangs.
        deadline=timedelta(seconds=10),
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
    )
    @given(case=strategy)
    def check(case):
        response = case.call(base_url=base_url, session=session, headers=dict(headers), timeout=10)
        statuses[response.status_code] += 1
        problem = violation(response, case.formatted_path)
        if problem:
            raise AssertionError(f"{problem}\n    {case.as_curl_command(headers=dict(headers))}")

    check()


def fuzz(
    schema, base_url: str, callers: dict[str, dict[str, str]], public: set[tuple[str, str]], statuses: Counter
) -> list[str]:
    """Every operation of the schema for each caller; the failures, each with its curl command."""
    failures: list[str] = []
    with requests.Session() as session:  # connections kept alive: else most of the time goes to connecting
        for result in schema.get_all_operations():
            operation = result.ok()
            opened = (operation.method.upper(), operation.path) in public
            for caller, headers in callers.items():
                examples = EXAMPLES if headers or opened else EXAMPLES_WITHOUT_TOKEN
                try:
                    fuzz_operation(
                        operation,
                        base_url=base_url,
                        session=session,
                        headers=headers,
                        examples=examples,
                        statuses=statuses,
                    )
                except Exception as error:  # every operation runs; the test fails on all of them at the end
                    failures.append(f"{operation.label} ({caller}): {error}")
    return failures


@pytest.mark.parametrize("service", APPS)
async def test_every_operation_answers_without_5xx_and_with_problem_json(service, make_settings):
    settings = make_settings(service, **OVERRIDES.get(service, {}))
    app = APPS[service](settings)
    async with serving(app) as base_url:
        async with httpx.AsyncClient(base_url=base_url) as client:
            spec = (await client.get("/openapi.json")).json()
        schema = schemathesis.openapi.from_dict(spec)
        callers = {"no token": {}, "admin": bearer(settings, "admin")}
        statuses: Counter = Counter()
        # The requests are sent from a thread: the service answers them on this event loop.
        failures = await asyncio.to_thread(fuzz, schema, base_url, callers, public_operations(app), statuses)
    print(f"{service}: {sum(statuses.values())} requests, statuses {dict(sorted(statuses.items()))}")
    assert statuses, "no operation was fuzzed: is the OpenAPI empty?"
    assert not failures, "\n\n".join(failures)
