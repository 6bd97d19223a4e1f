from backend_common.runner import run_service
from experiment_service.app import create_app
from experiment_service.settings import ExperimentSettings


def main() -> None:
    run_service(ExperimentSettings(), create_app)


if __name__ == "__main__":
    main()
