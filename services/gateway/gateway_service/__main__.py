from backend_common.runner import run_service
from gateway_service.app import create_app
from gateway_service.settings import GatewaySettings


def main() -> None:
    run_service(GatewaySettings(), create_app)


if __name__ == "__main__":
    main()
