import orjson
from aiohttp import web

from backend_common.errors import DomainError, ProblemError
from backend_common.http import check_json_values, json_response
from backend_common.keys import REQUEST_ID
from backend_common.ratelimit import rate_limit_headers
from telemetry_ingest_service import monitoring
from telemetry_ingest_service.api.errors import problem_of
from telemetry_ingest_service.appkeys import CREDENTIALS, INGEST, SENSOR_RATES
from telemetry_ingest_service.domain.credentials import SensorCredential
from telemetry_ingest_service.domain.errors import InvalidToken
from telemetry_ingest_service.domain.ingest import Accepted
from telemetry_ingest_service.domain.journal import Rejection

routes = web.RouteTableDef()


@routes.post("/api/v1/telemetry", name="ingest_telemetry")
async def ingest_telemetry(request: web.Request) -> web.Response:
    """A sensor's batch, with its own token (not a user's): 202 once durable. Every batch is
    counted by outcome (etp_ingest_batches_total), a refusal by the code that answers it."""
    try:
        return await _ingest(request)
    except ProblemError as exc:
        monitoring.batch_refused(exc.code)
        raise
    except DomainError as exc:
        problem = problem_of(exc)
        monitoring.batch_refused(problem.code if problem is not None else "internal")
        raise


async def _ingest(request: web.Request) -> web.Response:
    token = sensor_token(request.headers.get("Authorization"))
    credential = await request.app[CREDENTIALS].verify(token)
    decision = request.app[SENSOR_RATES].take(credential.digest.hex())
    headers = rate_limit_headers(decision)
    if not decision.allowed:
        raise ProblemError(
            429,
            "too_many_requests",
            f"Too many batches from this token; retry in {decision.retry_after} s.",
            headers=headers,
        )
    try:
        result = await _accept(request, credential)
    except ProblemError as exc:
        exc.headers.extend(headers)
        raise
    monitoring.batch_accepted(result)
    return json_response(result.as_json(), status=202, headers=headers)


def sensor_token(authorization: str | None) -> str:
    """The token of `Authorization: Bearer <token>`."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise InvalidToken("Send the sensor token as `Authorization: Bearer <token>`.")
    return token


async def _accept(request: web.Request, credential: SensorCredential) -> Accepted:
    """The batch, accepted; a refusal is answered as a ProblemError and kept in the sensor's
    journal first (but for a full spool: that is ours to answer for, not the sensor's)."""
    ingest = request.app[INGEST]
    document: object = None
    try:
        document = await _read_batch(request)
        return await ingest.accept(credential, document)
    except (DomainError, ProblemError) as exc:
        problem = exc if isinstance(exc, ProblemError) else problem_of(exc)
        if problem is None:
            raise
        if problem.status != 503:
            rejection = Rejection.of(
                status=problem.status,
                code=problem.code,
                detail=problem.detail or problem.code,
                errors=problem.errors,
                document=document,
                cause=exc,
            )
            await ingest.journal(credential.sensor_id, rejection, request.get(REQUEST_ID))
        if problem is exc:
            raise
        raise problem from exc


async def _read_batch(request: web.Request) -> object:
    """The body as decoded JSON."""
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise ProblemError(413, "payload_too_large", exc.text) from None
    except ConnectionResetError:
        raise ProblemError(
            400, "incomplete_body", "The connection closed before the body arrived."
        ) from None
    try:
        document: object = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ProblemError(400, "malformed_json", f"The body is not valid JSON: {exc}") from None
    if b"\\u0000" in body:
        check_json_values(document)  # says where the NUL is
    return document
