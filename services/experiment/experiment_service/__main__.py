from backend_common.runner import run_service
from experiment_service.settings import ExperimentSettings


def main() -> None:
    # The app's modules are imported by the runner, after it has set up the metrics of several
    # workers (backend_common.runner).
    run_service(ExperimentSettings(), "experiment_service.app:create_app")


if __name__ == "__main__":
    main()
