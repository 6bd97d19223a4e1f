from aiohttp import web

from backend_common.export_budget import ExportSlots
from experiment_service.domain.artifacts.service import Artifacts
from experiment_service.domain.audit_log import AuditLog
from experiment_service.domain.capture_sessions import CaptureSessions
from experiment_service.domain.comparison import Comparisons
from experiment_service.domain.conversion_profiles import ConversionProfiles
from experiment_service.domain.experiments import Experiments
from experiment_service.domain.run_sensors import RunSensors
from experiment_service.domain.runs import Runs
from experiment_service.domain.sensors import Sensors
from experiment_service.domain.webhooks.subscriptions import Webhooks

EXPERIMENTS = web.AppKey("experiments", Experiments)
RUNS = web.AppKey("runs", Runs)
CAPTURE_SESSIONS = web.AppKey("capture_sessions", CaptureSessions)
AUDIT_LOG = web.AppKey("audit_log", AuditLog)
SENSORS = web.AppKey("sensors", Sensors)
CONVERSION_PROFILES = web.AppKey("conversion_profiles", ConversionProfiles)
RUN_SENSORS = web.AppKey("run_sensors", RunSensors)
WEBHOOKS = web.AppKey("webhooks", Webhooks)
EXPORTS = web.AppKey("exports", ExportSlots)
ARTIFACTS = web.AppKey("artifacts", Artifacts)
COMPARISONS = web.AppKey("comparisons", Comparisons)
