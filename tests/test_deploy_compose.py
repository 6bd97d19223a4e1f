"""docker-compose.yml and the Dockerfile: `docker-compose config` (Debian's docker-compose) takes
the file, every ETP process's environment names settings its code reads (and sets those without a
default, with values the settings accept), and what Prometheus scrapes is what compose runs. No
image is pulled or built here."""

import ipaddress
import os
import re
import shutil
import subprocess

import pytest
import yaml

from auth_service.settings import AuthSettings
from backend_common.paths import MIGRATIONS_ROOT, PROJECT_ROOT
from experiment_service.settings import ExperimentSettings
from gateway_service.settings import GatewaySettings
from telemetry_ingest_service.settings import TelemetryIngestSettings

COMPOSE = PROJECT_ROOT / "docker-compose.yml"
DOCKERFILE = PROJECT_ROOT / "Dockerfile"
PROMETHEUS = PROJECT_ROOT / "deploy" / "prometheus" / "prometheus.yml"

# The package a process's `python -m` runs → its settings (and so its env prefix).
SETTINGS = {
    "auth_service": AuthSettings,
    "experiment_service": ExperimentSettings,
    "telemetry_ingest_service": TelemetryIngestSettings,
    "gateway_service": GatewaySettings,
}
# Read by the image itself (the Dockerfile's HEALTHCHECK), not by a service.
IMAGE_VARIABLES = {"ETP_HEALTH_URL"}
API_SERVICES = {"auth", "experiment", "telemetry-ingest", "gateway"}


def prefix(settings_class: type) -> str:
    return settings_class.model_config["env_prefix"]


@pytest.fixture(scope="module")
def compose() -> dict:
    command = shutil.which("docker-compose")
    if command is None:
        pytest.skip(
            "docker-compose is not installed (Debian's docker-compose; .ci/run installs it)"
        )
    result = subprocess.run(
        [command, "--file", str(COMPOSE), "config"],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"},
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def etp_processes(compose: dict) -> dict[str, dict]:
    """The services that run the ETP image, by name."""
    image = yaml.safe_load(COMPOSE.read_text())["x-etp-process"]["image"]
    return {name: svc for name, svc in compose["services"].items() if svc.get("image") == image}


def settings_of(service: dict) -> type | None:
    command = service["command"]
    if command[:2] != ["python", "-m"]:
        return None
    return SETTINGS[command[2].split(".")[0]]


def test_every_etp_process_runs_a_known_module(compose):
    processes = etp_processes(compose)
    assert set(processes) == {
        "migrations",
        "auth",
        "experiment",
        "experiment-workers",
        "telemetry-ingest",
        "telemetry-workers",
        "gateway",
    }
    for name, service in processes.items():
        if name == "migrations":
            assert service["command"][:2] == ["sh", "-c"]
            continue
        assert settings_of(service) is not None, name


def test_every_variable_is_a_setting_of_its_process(compose):
    for name, service in etp_processes(compose).items():
        settings_class = settings_of(service)
        if settings_class is None:
            continue
        own = prefix(settings_class)
        for variable in service["environment"]:
            if variable in IMAGE_VARIABLES:
                continue
            assert variable.startswith(own), f"{name}: {variable} is not {own}*"
            field = variable.removeprefix(own).lower()
            assert field in settings_class.model_fields, f"{name}: {variable} is no setting"


def test_each_process_gets_its_required_settings_with_valid_values(compose, monkeypatch):
    for name, service in etp_processes(compose).items():
        settings_class = settings_of(service)
        if settings_class is None:
            continue
        own = prefix(settings_class)
        required = {
            f"{own}{field.upper()}"
            for field, info in settings_class.model_fields.items()
            if info.is_required()
        }
        assert required <= set(service["environment"]), f"{name} misses {required}"
        with monkeypatch.context() as patch:
            for variable in [v for v in os.environ if v.startswith(own)]:
                patch.delenv(variable)
            for variable, value in service["environment"].items():
                patch.setenv(variable, str(value))
            settings = settings_class()  # raises on a value the settings refuse
        if name in API_SERVICES:
            assert settings.host == "0.0.0.0", name
            assert settings.metrics_host == "0.0.0.0", name


def test_the_migrations_cover_every_database(compose):
    service = compose["services"]["migrations"]
    script = service["command"][2]
    databases = sorted(p.name for p in MIGRATIONS_ROOT.iterdir() if p.is_dir())
    for database in databases:
        assert f"bin/migrate {database}" in script
        assert f"{database.upper()}_DATABASE_URL" in service["environment"]
    assert set(service["environment"]) == {f"{d.upper()}_DATABASE_URL" for d in databases}


def test_database_urls_and_upstreams_name_compose_services(compose):
    names = set(compose["services"])
    for name, service in etp_processes(compose).items():
        for variable, value in service["environment"].items():
            if variable.endswith(("_URL", "_ENDPOINT")) and value:
                host = re.match(r"^[a-z]+://(?:[^@/]*@)?([^:/]+)", str(value)).group(1)
                assert host in names | {"127.0.0.1"}, f"{name}: {variable} → {host}"


def test_prometheus_scrapes_what_compose_runs_and_is_let_in(compose):
    subnets = [
        ipaddress.ip_network(pool["subnet"])
        for network in compose["networks"].values()
        for pool in network["ipam"]["config"]
    ]
    scrape = yaml.safe_load(PROMETHEUS.read_text())
    targets = {
        target
        for job in scrape["scrape_configs"]
        for group in job["static_configs"]
        for target in group["targets"]
    }
    processes = etp_processes(compose)
    for target in targets:
        host, port = target.split(":")
        assert host in compose["services"], target
        if host not in processes:
            continue
        env = processes[host]["environment"]
        own = prefix(settings_of(processes[host]))
        assert str(env[f"{own}METRICS_PORT"]) == port, target
        allowed = [
            ipaddress.ip_network(n) for n in yaml.safe_load(env[f"{own}METRICS_ALLOWED_NETWORKS"])
        ]
        assert all(any(s.subnet_of(a) for a in allowed) for s in subnets), target
    assert {t.split(":")[0] for t in targets} >= API_SERVICES


def test_timescaledb_is_pinned_to_a_release_that_keeps_generated_columns(compose):
    image = compose["services"]["timescaledb"]["image"]
    match = re.fullmatch(r"timescale/timescaledb:(\d+)\.(\d+)\.(\d+)-pg(\d+)", image)
    assert match, image
    major, minor, patch, pg = map(int, match.groups())
    assert (major, minor, patch) >= (2, 28, 3), image
    assert pg >= 15, image


def test_dockerfile_is_multi_stage_non_root_with_a_healthcheck():
    lines = [
        line.strip()
        for line in re.sub(r"\\\n", " ", DOCKERFILE.read_text()).splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    stages = [line for line in lines if line.upper().startswith("FROM ")]
    assert len(stages) >= 2, stages
    final = lines[lines.index(stages[-1]) :]
    users = [line.split()[1] for line in final if line.upper().startswith("USER ")]
    assert users, "no USER in the runtime stage"
    assert users[-1] not in ("root", "0"), users
    assert any(line.upper().startswith("HEALTHCHECK ") for line in final)
    assert "/health" in DOCKERFILE.read_text()
    assert any("--from=" in line and "web/dist" in line for line in final), (
        "the portal is not copied"
    )
    assert "slim" in stages[-1]


def test_what_compose_mounts_and_the_image_copies_is_in_the_repository(compose):
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith(str(PROJECT_ROOT)):
                assert (PROJECT_ROOT / source).exists(), f"{name} mounts a missing {source}"
    ignored = [
        line.strip().rstrip("/")
        for line in (PROJECT_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    for line in text.splitlines():
        words = line.split()
        if not words or words[0] != "COPY" or any(w.startswith("--from=") for w in words):
            continue
        for source in words[1:-1]:
            assert (PROJECT_ROOT / source).exists(), f"COPY of a missing {source}"
            assert source.rstrip("/") not in ignored, f"COPY of {source}, which .dockerignore drops"
