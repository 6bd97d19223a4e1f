from aiohttp import web

from backend_common.jobs import JobRunner
from backend_common.live import Hub
from backend_common.ratelimit import TokenBuckets
from telemetry_ingest_service.domain.credentials import Credentials
from telemetry_ingest_service.domain.ingest import Ingest
from telemetry_ingest_service.domain.readings import Readings

INGEST = web.AppKey("ingest", Ingest)
CREDENTIALS = web.AppKey("credentials", Credentials)
SENSOR_RATES = web.AppKey("sensor_rates", TokenBuckets)
READINGS = web.AppKey("readings", Readings)
HUB = web.AppKey("hub", Hub)
JOB_RUNNER = web.AppKey("job_runner", JobRunner)
