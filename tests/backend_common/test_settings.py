import pytest
from pydantic import ValidationError

from auth_service.settings import AuthSettings
from backend_common.settings import mask_dsn
from tests.plugins.services import SERVICES

DATABASE_URL = "postgresql://etp:s3cret@db.internal:5432/auth"


@pytest.fixture(autouse=True)
def _auth_signing_keys_setting(monkeypatch, tmp_path):
    # Required by the auth service's settings; these tests never load the keys.
    monkeypatch.setenv("AUTH_JWT_KEYS_DIR", str(tmp_path))


@pytest.mark.parametrize(
    ("dsn", "masked"),
    [
        (
            "postgresql://etp:s3cret@db.internal:5432/experiment",
            "postgresql://etp:***@db.internal:5432/experiment",
        ),
        ("postgresql://:s3cret@db.internal/experiment", "postgresql://:***@db.internal/experiment"),
        ("postgresql://etp:p@ss:w0rd/x@db/experiment", "postgresql://etp:***@db/experiment"),
        ("postgresql://etp:@db/experiment", "postgresql://etp:***@db/experiment"),
        (
            "postgresql://etp@db/experiment?password=s3cret&sslmode=require",
            "postgresql://etp@db/experiment?password=***&sslmode=require",
        ),
        (
            "postgresql://db/experiment?sslmode=verify-full&sslpassword=s3cret",
            "postgresql://db/experiment?sslmode=verify-full&sslpassword=***",
        ),
    ],
)
def test_mask_dsn_with_password_hides_it(dsn, masked):
    assert mask_dsn(dsn) == masked
    assert "s3cret" not in mask_dsn(dsn)


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://etp@db.internal:5432/experiment",
        "postgresql://db.internal:5432/experiment",
        "postgresql:///experiment?host=/run/postgresql",
        "not a dsn",
    ],
)
def test_mask_dsn_without_password_is_unchanged(dsn):
    assert mask_dsn(dsn) == dsn


def test_auth_settings_read_env_with_prefix(monkeypatch):
    monkeypatch.setenv("AUTH_PORT", "9101")
    monkeypatch.setenv("AUTH_DATABASE_URL", DATABASE_URL)
    monkeypatch.setenv("AUTH_LOG_LEVEL", "debug")
    monkeypatch.setenv("AUTH_MAX_BODY_BYTES", "2048")

    settings = AuthSettings()

    assert settings.port == 9101
    assert settings.database_url.get_secret_value() == DATABASE_URL
    assert settings.log_level == "debug"
    assert settings.max_body_bytes == 2048
    assert (settings.service_name, settings.database_name) == ("auth", "auth")


def test_auth_settings_ignore_env_without_prefix(monkeypatch):
    monkeypatch.setenv("AUTH_DATABASE_URL", DATABASE_URL)
    monkeypatch.setenv("PORT", "9101")
    monkeypatch.setenv("EXPERIMENT_PORT", "9102")
    monkeypatch.setenv("DATABASE_NAME", "experiment")

    settings = AuthSettings()

    assert settings.port == 8001
    assert settings.database_name == "auth"


def test_auth_settings_do_not_show_the_database_password(monkeypatch):
    monkeypatch.setenv("AUTH_DATABASE_URL", DATABASE_URL)

    settings = AuthSettings()

    assert "s3cret" not in repr(settings)
    assert "s3cret" not in str(settings.model_dump())


def test_auth_settings_without_database_url_are_refused(monkeypatch):
    monkeypatch.delenv("AUTH_DATABASE_URL", raising=False)

    with pytest.raises(ValidationError, match="database_url"):
        AuthSettings()


@pytest.mark.parametrize("name", list(SERVICES))
def test_service_settings_read_their_own_prefix(monkeypatch, name):
    spec = SERVICES[name]
    monkeypatch.setenv(f"{spec.env_prefix}PORT", "9200")
    monkeypatch.setenv(f"{spec.env_prefix}DATABASE_URL", DATABASE_URL)

    settings = spec.settings_class()

    assert settings.port == 9200
    assert settings.service_name == name


@pytest.mark.parametrize("port", ["-1", "65536"])
@pytest.mark.parametrize("name", list(SERVICES))
def test_service_settings_port_out_of_range_is_refused(monkeypatch, name, port):
    spec = SERVICES[name]
    monkeypatch.setenv(f"{spec.env_prefix}PORT", port)
    monkeypatch.setenv(f"{spec.env_prefix}DATABASE_URL", DATABASE_URL)

    with pytest.raises(ValidationError, match="port"):
        spec.settings_class()
