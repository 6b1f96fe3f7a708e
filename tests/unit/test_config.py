"""interact.config: defaults < TOML file < INTERACT_* environment < flags, then validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from interact.config import Config, field_names, from_env, from_toml, load


@pytest.fixture(autouse=True)
def _no_config_from_the_real_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # load() falls back to os.environ for INTERACT_CONFIG; keep the runner's out of these tests
    monkeypatch.delenv("INTERACT_CONFIG", raising=False)


def write(tmp_path: Path, text: str, name: str = "interact.toml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_defaults() -> None:
    config = load(environ={})
    assert config == Config()
    assert config.host == "0.0.0.0"
    assert config.port == 8080
    assert config.redis_url == ""
    assert config.engine == "memory"
    assert config.workers == 1
    assert config.max_text_len == 40
    assert config.compression is True
    assert config.dev_login is None
    assert config.dev_login_enabled is True


def test_every_field_has_help() -> None:
    from interact.config import HELP

    assert set(HELP) == set(field_names())


@pytest.mark.parametrize("table", [True, False])
def test_toml_overrides_defaults(tmp_path: Path, table: bool) -> None:
    body = 'port = 9001\nhost = "127.0.0.1"\ncompression = false\nidle_timeout = 30.5\n'
    path = write(tmp_path, ("[interact]\n" if table else "") + body)
    config = load(path, environ={})
    assert config.port == 9001
    assert config.host == "127.0.0.1"
    assert config.compression is False
    assert config.idle_timeout == 30.5
    assert config.tick_ms == Config().tick_ms  # untouched settings keep their default


def test_toml_strings_are_coerced(tmp_path: Path) -> None:
    path = write(tmp_path, 'port = "9002"\ndev_login = "off"\nslow_grace = "1.5"\n')
    assert from_toml(path) == {"port": 9002, "dev_login": False, "slow_grace": 1.5}


def test_config_file_from_environment(tmp_path: Path) -> None:
    path = write(tmp_path, "port = 9003\n")
    assert load(environ={"INTERACT_CONFIG": path}).port == 9003


def test_environment_overrides_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[interact]\nport = 9001\ntick_ms = 20\n")
    config = load(path, environ={"INTERACT_PORT": "9100", "INTERACT_COMPRESSION": "no"})
    assert config.port == 9100
    assert config.tick_ms == 20  # from the file, not overridden
    assert config.compression is False


def test_flags_override_environment(tmp_path: Path) -> None:
    path = write(tmp_path, "port = 9001\nhost = 'a'\n")
    environ = {"INTERACT_PORT": "9100", "INTERACT_HOST": "b", "INTERACT_TICK_MS": "7"}
    config = load(path, {"port": 9200, "tick_ms": None}, environ=environ)
    assert config.port == 9200
    assert config.host == "b"
    assert config.tick_ms == 7  # a flag left as None does not override


def test_from_env_reads_only_interact_variables() -> None:
    environ = {"PORT": "1", "INTERACT_PORT": "2", "INTERACT_NOPE": "x", "interact_host": "h"}
    assert from_env(environ) == {"port": 2}


def test_from_env_coerces_types() -> None:
    environ = {
        "INTERACT_WORKERS": "3",
        "INTERACT_IDLE_TIMEOUT": "12.5",
        "INTERACT_COMPRESSION": "TRUE",
        "INTERACT_SECRET": "s3cret",
    }
    assert from_env(environ) == {
        "workers": 3,
        "idle_timeout": 12.5,
        "compression": True,
        "secret": "s3cret",
    }


@pytest.mark.parametrize("table", [True, False])
def test_unknown_toml_key(tmp_path: Path, table: bool) -> None:
    path = write(tmp_path, ("[interact]\n" if table else "") + "port = 1\nprot = 2\n")
    with pytest.raises(ValueError, match="prot"):
        load(path, environ={})


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("on", True),
        ("1", True),
        ("true", True),
        ("Yes", True),
        (" ON ", True),
        ("0", False),
        ("off", False),
        ("false", False),
        ("no", False),
        ("auto", None),
        ("", None),
    ],
)
def test_dev_login_parsing(raw: str, value: bool | None) -> None:
    assert load(environ={"INTERACT_DEV_LOGIN": raw}).dev_login is value


@pytest.mark.parametrize(("raw", "value"), [("on", True), ("0", False), ("False", False)])
def test_plain_bool_parsing(raw: str, value: bool) -> None:
    assert load(environ={"INTERACT_COMPRESSION": raw}).compression is value


@pytest.mark.parametrize("raw", ["auto", "", "maybe", "2"])
def test_plain_bool_refuses_non_booleans(raw: str) -> None:
    # "auto" only means "unset" for settings that can be unset
    with pytest.raises(ValueError, match="compression"):
        load(environ={"INTERACT_COMPRESSION": raw})


def test_dev_login_refuses_non_booleans() -> None:
    with pytest.raises(ValueError, match="dev_login"):
        load(environ={"INTERACT_DEV_LOGIN": "sometimes"})


def test_bad_number_in_environment() -> None:
    with pytest.raises(ValueError):
        load(environ={"INTERACT_PORT": "eighty"})


def test_workers_need_redis() -> None:
    with pytest.raises(ValueError, match="memory engine"):
        load(flags={"workers": 2}, environ={})
    config = load(flags={"workers": 2, "redis_url": "redis://localhost/0"}, environ={})
    assert config.workers == 2
    assert config.engine == "redis"


def test_workers_at_least_one() -> None:
    with pytest.raises(ValueError, match="workers"):
        load(environ={"INTERACT_WORKERS": "0"})


@pytest.mark.parametrize("prefix", ["a{b", "x}", "{tag}:"])
def test_prefix_with_a_brace(prefix: str) -> None:
    with pytest.raises(ValueError, match="brace"):
        load(flags={"redis_prefix": prefix}, environ={})


def test_prefix_without_braces_is_fine() -> None:
    assert load(flags={"redis_prefix": "app-1:"}, environ={}).redis_prefix == "app-1:"


def test_soft_buffer_must_not_exceed_hard() -> None:
    with pytest.raises(ValueError, match="soft_buffer_bytes"):
        load(flags={"soft_buffer_bytes": 10_000, "hard_buffer_bytes": 9_999}, environ={})


@pytest.mark.parametrize("flags", [{"tick_ms": 0}, {"history_size": 0}, {"max_frame_bytes": 63}])
def test_positive_settings(flags: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        load(flags=flags, environ={})


@pytest.mark.parametrize("raw", ["-1", "nan"])
def test_suspend_grace_is_not_negative_nor_nan(raw: str) -> None:
    with pytest.raises(ValueError, match="suspend_grace"):
        load(environ={"INTERACT_SUSPEND_GRACE": raw})
    assert load(environ={"INTERACT_SUSPEND_GRACE": "0"}).suspend_grace == 0.0  # off


def test_redacted_hides_secrets() -> None:
    config = Config(secret="top-secret-key", wechat_secret="wx-secret", wechat_appid="wx123")
    out = config.redacted()
    assert out["secret"] == "***"
    assert out["wechat_secret"] == "***"
    assert out["wechat_appid"] == "wx123"
    assert out["port"] == 8080
    assert "top-secret-key" not in repr(out)
    assert "wx-secret" not in repr(out)
    assert config.secret == "top-secret-key"  # the config itself keeps its secret
    assert set(out) == set(field_names())


def test_redacted_leaves_empty_secrets_empty() -> None:
    out = Config().redacted()
    assert out["secret"] == ""
    assert out["wechat_secret"] == ""


WECHAT = {"wechat_appid": "wx123", "wechat_secret": "wxsecret"}


def test_dev_login_on_by_default() -> None:
    assert load(environ={}).dev_login_enabled is True


def test_dev_login_off_when_wechat_configured() -> None:
    assert load(flags=WECHAT, environ={}).dev_login_enabled is False


@pytest.mark.parametrize("only", ["wechat_appid", "wechat_secret"])
def test_dev_login_stays_on_with_half_the_wechat_credentials(only: str) -> None:
    assert load(flags={only: WECHAT[only]}, environ={}).dev_login_enabled is True


def test_explicit_dev_login_wins() -> None:
    assert load(flags={**WECHAT, "dev_login": True}, environ={}).dev_login_enabled is True
    assert load(flags={"dev_login": False}, environ={}).dev_login_enabled is False
    environ = {"INTERACT_DEV_LOGIN": "on"}
    assert load(flags=WECHAT, environ=environ).dev_login_enabled is True


def test_dev_login_defaults_off_on_redis() -> None:
    assert Config(redis_url="redis://127.0.0.1:6379/0").dev_login_enabled is False
    assert Config(redis_url="redis://x", dev_login=True).dev_login_enabled is True


def test_payment_provider_defaults() -> None:
    assert Config().payment == "dev"
    assert Config(redis_url="redis://x").payment == "none"
    assert Config(redis_url="redis://x", pay_provider="dev").payment == "dev"
