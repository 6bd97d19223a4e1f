from aiohttp import web

from backend_common.errors import ProblemError
from backend_common.http import json_response
from backend_common.keys import REQUEST_ID
from backend_common.ratelimit import Decision
from telemetry_ingest_service.appkeys import CREDENTIALS, INGEST, SENSOR_RATES

routes = web.RouteTableDef()


@routes.post("/api/v1/telemetry", name="ingest_telemetry")
async def ingest_telemetry(request: web.Request) -> web.Response:
    """A sensor's batch, with its own token (not a user's): 202 once durable."""
    credential = await request.app[CREDENTIALS].verify(request.headers.get("Authorization"))
    decision = request.app[SENSOR_RATES].take(credential.digest.hex())
    headers = _rate_limit_headers(decision)
    try:
        if not decision.allowed:
            raise ProblemError(
                429,
                "too_many_requests",
                f"Too many batches from this token; retry in {decision.retry_after} s.",
                headers={"Retry-After": str(decision.retry_after)},
            )

        async def read_body() -> bytes:
            try:
                return await request.read()
            except web.HTTPRequestEntityTooLarge as exc:
                raise ProblemError(413, "payload_too_large", exc.text) from None
            except ConnectionResetError:
                raise ProblemError(
                    400, "incomplete_body", "The connection closed before the body arrived."
                ) from None

        result = await request.app[INGEST].accept(
            credential, read_body, request_id=request.get(REQUEST_ID)
        )
    except ProblemError as exc:
        exc.headers.extend(headers)
        raise
    return json_response(result.as_json(), status=202, headers=headers)


def _rate_limit_headers(decision: Decision) -> dict[str, str]:
    return {
        "RateLimit-Limit": str(decision.limit),
        "RateLimit-Remaining": str(decision.remaining),
        "RateLimit-Reset": str(decision.reset),
    }
