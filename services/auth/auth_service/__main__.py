from auth_service.app import create_app
from auth_service.settings import AuthSettings
from backend_common.runner import run_service


def main() -> None:
    run_service(AuthSettings(), create_app)


if __name__ == "__main__":
    main()
