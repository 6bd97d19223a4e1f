from backend_common.runner import run_service
from telemetry_ingest_service.app import create_app
from telemetry_ingest_service.settings import TelemetryIngestSettings


def main() -> None:
    run_service(TelemetryIngestSettings(), create_app)


if __name__ == "__main__":
    main()
