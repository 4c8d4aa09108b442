from __future__ import annotations

import pytest

from dialogllm.config import get_settings
from dialogllm.errors import ConfigError


def test_settings_read_environment_with_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIALOGLLM_REDIS_URL", "rediss://u:p@h:6380/1")
    monkeypatch.setenv("DIALOGLLM_KEY_PREFIX", "app1")
    settings = get_settings(reload=True)
    assert settings.redis_url == "rediss://u:p@h:6380/1"
    assert settings.key_prefix == "app1"


def test_unset_redis_url_means_the_embedded_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DIALOGLLM_REDIS_URL", raising=False)
    assert get_settings(reload=True).redis_url is None


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("DIALOGLLM_REDIS_URL", "http://localhost"),
        ("DIALOGLLM_KEY_PREFIX", "a{b}"),
        ("DIALOGLLM_LOG_FORMAT", "xml"),
        ("DIALOGLLM_CHECKPOINT_TTL_SECONDS", "-3"),
    ],
)
def test_bad_setting_raises_config_error_naming_variable(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError, match=var):
        get_settings(reload=True)
    monkeypatch.delenv(var)
    get_settings(reload=True)
