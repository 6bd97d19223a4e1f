from aiohttp import web

from experiment_service.domain.audit_log import AuditLog
from experiment_service.domain.capture_sessions import CaptureSessions
from experiment_service.domain.experiments import Experiments
from experiment_service.domain.runs import Runs

EXPERIMENTS = web.AppKey("experiments", Experiments)
RUNS = web.AppKey("runs", Runs)
CAPTURE_SESSIONS = web.AppKey("capture_sessions", CaptureSessions)
AUDIT_LOG = web.AppKey("audit_log", AuditLog)
