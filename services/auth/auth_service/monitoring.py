"""The auth service's own Prometheus metrics (docs/operations.md, "Monitoring"). Requests, the
pool and the credential rate limits are counted by backend_common."""

from prometheus_client import Counter

LOGIN_FAILURES = Counter(
    "etp_login_failures_total",
    "Password sign-ins refused, by reason: invalid_credentials (unknown login or wrong"
    " password), throttled (too many attempts).",
    ["reason"],
)
INVALID_CREDENTIALS, THROTTLED = "invalid_credentials", "throttled"
for _reason in (INVALID_CREDENTIALS, THROTTLED):
    LOGIN_FAILURES.labels(_reason)  # at 0 before the first one


def login_failed(reason: str) -> None:
    LOGIN_FAILURES.labels(reason).inc()
