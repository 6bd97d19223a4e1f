"""Where the client finds ETP: the stored file (0600), the environment over it."""

import stat

import pytest

from etp.config import Config, config_path, load_config, save_config
from etp.errors import ConfigError, ExitCode


def test_saved_with_mode_0600_in_the_xdg_config_dir(tmp_path):
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    path = save_config(Config("http://a:8000/", "etpk_1_s"), env)
    assert path == config_path(env)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_config(env=env) == Config("http://a:8000", "etpk_1_s")


def test_the_environment_overrides_the_file(tmp_path):
    env = {"ETP_CONFIG": str(tmp_path / "c.json")}
    save_config(Config("http://stored", "etpk_stored"), env)
    assert load_config(env={**env, "ETP_URL": "http://env"}) == Config("http://env", "etpk_stored")
    assert load_config(env={**env, "ETP_API_KEY": "etpk_env"}).api_key == "etpk_env"
    assert load_config(url="http://arg", env=env).url == "http://arg"


def test_nothing_configured_is_a_usage_error(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_config(env={"ETP_CONFIG": str(tmp_path / "none.json")})
    assert caught.value.exit_code is ExitCode.USAGE
    assert "etp login" in str(caught.value)


def test_the_key_is_not_in_the_repr():
    assert "secret" not in repr(Config("http://a", "etpk_1_secret"))
