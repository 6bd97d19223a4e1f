"""ETP's Python API for notebooks and training scripts (`import etp`): `etp.start_run(...)` gives
a `Run` to log params, metrics (batched in the background) and artifacts into. `etp.Client` is the
HTTP layer under it and under the `etp` command."""

from etp.client import Client
from etp.errors import ApiError, ChecksumMismatch, ConfigError, EtpError, ExitCode, UsageError
from etp.run import Run, start_run

__all__ = [
    "ApiError",
    "ChecksumMismatch",
    "Client",
    "ConfigError",
    "EtpError",
    "ExitCode",
    "Run",
    "UsageError",
    "start_run",
]
