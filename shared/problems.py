"""RFC 9457 problem details (application/problem+json) for every HTTP error."""

from asyncpg.exceptions import CharacterNotInRepertoireError, UntranslatableCharacterError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.db import is_transient

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://gridlink.example.org/problems/"


class Problem(Exception):
    """Raise from a route to answer with a problem+json body."""

    def __init__(self, status: int, title: str, detail: str = "", *, kind: str = "", **extra):
        super().__init__(detail or title)
        self.status, self.title, self.detail, self.kind, self.extra = status, title, detail, kind, extra


def problem_response(
    request: Request, status: int, title: str, detail: str = "", kind: str = "", **extra
) -> JSONResponse:
    body = {
        "type": PROBLEM_BASE + kind if kind else "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem):
        response = problem_response(request, exc.status, exc.title, exc.detail, exc.kind, **exc.extra)
        # A refusal that knows when to come back says so in the standard header too (clients, proxies).
        if "retry_after_s" in exc.extra:
            response.headers["Retry-After"] = str(exc.extra["retry_after_s"])
        return response

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        errors = [
            {"field": ".".join(str(p) for p in e["loc"] if p != "body"), "message": e["msg"]} for e in exc.errors()
        ]
        return problem_response(
            request,
            422,
            "Invalid request",
            "The request body or parameters are invalid.",
            "validation-error",
            errors=errors,
        )

    # PostgreSQL cannot store U+0000 in text (nor \u0000 in jsonb), which any text field of a request
    # may carry; Python takes it, so the database is the first to refuse it. That is the request's
    # fault, not the server's: one answer here for every field of every service, and the
    # transaction it broke has rolled back by the time this runs.
    @app.exception_handler(CharacterNotInRepertoireError)
    @app.exception_handler(UntranslatableCharacterError)
    async def _unstorable(request: Request, exc: Exception):
        return problem_response(
            request,
            422,
            "Invalid request",
            "请求中含有无法保存的字符（如空字符 \\u0000），请删除后重试。",
            "unstorable-character",
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        # The database or broker being briefly away is not the caller's fault nor a bug: say so,
        # and when to try again (nothing was accepted, so a retry is safe).
        if is_transient(exc):
            response = problem_response(
                request, 503, "Service unavailable", "系统暂时繁忙，请稍后几秒重试。", kind="temporarily-unavailable"
            )
            response.headers["retry-after"] = "5"
            return response
        return problem_response(
            request, 500, "Internal error", "系统出错，已记录，请稍后重试或联系管理员。", kind="internal"
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        return problem_response(request, exc.status_code, str(exc.detail), kind=f"http-{exc.status_code}")
