"""LLM settings: roles, fallbacks, the local default, secrets."""

from __future__ import annotations

import pytest

from dialogllm.errors import ConfigError
from dialogllm.llm import LOCAL_MODEL, LLMSettings, RoleSettings, get_llm_settings


def test_no_base_url_means_the_local_default_for_every_role() -> None:
    targets = LLMSettings(base_url=None).targets("persona")
    assert [t.model for t in targets] == [LOCAL_MODEL]
    assert targets[0].is_local and targets[0].api_key is None
    assert targets[0].max_tokens == 128


def test_role_overrides_model_and_chains_fallbacks() -> None:
    settings = LLMSettings(
        base_url="https://api.openai.com/v1",
        api_key="sk-abcdefghijklmnop",
        model="gpt-4o",
        requests_per_minute=100,
        roles={
            "director": RoleSettings(
                model=["gpt-4o-mini", "gpt-4.1-nano"],
                temperature=0.1,
                fallbacks=[
                    RoleSettings(base_url="http://vllm:8000/v1", model="qwen"),
                    RoleSettings(model=LOCAL_MODEL),
                ],
            )
        },
    )
    targets = settings.targets("director")
    assert [t.label for t in targets] == [
        "gpt-4o-mini",
        "gpt-4.1-nano",
        "qwen",
        "local",
    ]
    assert targets[0].temperature == 0.1 and targets[2].temperature == 0.1
    assert targets[0].length_in_extra_body is False  # api.openai.com rejects extras
    assert targets[2].length_in_extra_body is True
    assert targets[2].base_url == "http://vllm:8000/v1"
    assert targets[3].is_local
    assert targets[1].requests_per_minute == 100
    assert [t.model for t in settings.targets("persona")] == ["gpt-4o"]


def test_roles_are_read_as_json_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DIALOGLLM_LLM_BASE_URL", "http://127.0.0.1:8000/v1")
    monkeypatch.setenv("DIALOGLLM_LLM_ROLES", '{"director": {"model": "big"}}')
    monkeypatch.setenv("DIALOGLLM_LLM_LENGTH_IN_EXTRA_BODY", "false")
    settings = get_llm_settings(reload=True)
    try:
        assert settings.targets("director")[0].model == "big"
        assert settings.targets("director")[0].length_in_extra_body is False
    finally:
        monkeypatch.undo()
        get_llm_settings(reload=True)


def test_bad_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIALOGLLM_LLM_MAX_TOKENS", "-3")
    with pytest.raises(ConfigError, match="DIALOGLLM_LLM_MAX_TOKENS"):
        get_llm_settings(reload=True)
    monkeypatch.undo()
    get_llm_settings(reload=True)


def test_api_key_never_shows_in_repr_or_dump() -> None:
    secret = "sk-proj-verysecretvalue123"
    settings = LLMSettings(
        base_url="http://x/v1",
        api_key=secret,
        roles={"a": RoleSettings(api_key="other-secret-123")},
    )
    for text in (
        repr(settings),
        str(settings.model_dump()),
        repr(settings.targets("a")),
    ):
        assert secret not in text
        assert "other-secret-123" not in text


def test_cache_dir_follows_the_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIALOGLLM_DATA_DIR", "/srv/dialogllm")
    assert str(LLMSettings().cache_dir) == "/srv/dialogllm/models"
    monkeypatch.delenv("DIALOGLLM_DATA_DIR")
    assert LLMSettings().cache_dir.parts[-3:] == (".cache", "dialogllm", "models")
