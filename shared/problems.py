"""RFC 9457 problem details (application/problem+json) for every HTTP error."""

from asyncpg.exceptions import CharacterNotInRepertoireError, UntranslatableCharacterError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

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
        return problem_response(request, exc.status, exc.title, exc.detail, exc.kind, **exc.extra)

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

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        return problem_response(request, exc.status_code, str(exc.detail), kind=f"http-{exc.status_code}")
