"""``shared.settings``: the agent's environment, validated once.

Expected behaviour: broker-protocol.md §7.1 (agent environment: ``SNYK_PORT``, ``SNYK_DISABLE_LIST_REPOS``,
``SNYK_MAX_IMAGE_SIZE_IN_BYTES`` default 2147483648, ``LOG_LEVEL`` debug/info/warn/error,
``MAX_ACTIVE_OPERATIONS``); §2.2 (Helm sets ``SNYK_PORT``, default 8081 there); the module docstrings
(``PORT`` is the fallback when ``SNYK_PORT`` is unset, a bad value is a ``ConfigurationError`` naming the
variable, ``INSECURE_REGISTRIES`` is a comma-separated ``host:port`` list, the README table is generated
from the model).

Note: §7.1 gives 17500 as the original agent's default port and 8081 as the value docs and Helm set;
this agent defaults to 8081 (asserted below so a change is deliberate).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.errors import ConfigurationError
from shared.settings import Settings, configuration_table, load_settings

SECRET_VALUE = "S3cr3t-Pa55w0rd-XYZ"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No variable the model reads may leak in from the developer's or CI's environment."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))


def test_defaults(tmp_path: Path) -> None:
    settings = load_settings()

    assert settings.snyk_port is None
    assert settings.port is None
    assert settings.listen_port == 8081
    assert settings.agent_host == "127.0.0.1"
    assert settings.cr_credentials is None
    assert settings.insecure_hosts == frozenset()
    assert settings.registry_timeout_seconds == 30.0
    assert settings.registry_max_retries == 4
    assert settings.registry_retry_budget_seconds == 60.0
    assert settings.snyk_disable_list_repos is False
    assert settings.snyk_max_image_size_in_bytes == 2147483648  # §7.1
    assert settings.max_active_operations == 1
    assert settings.broker_client_url is None
    assert settings.state_dir == tmp_path / "xdg-state" / "registry-agent"
    assert settings.https_cert is None
    assert settings.https_key is None
    assert settings.log_level == "info"


def test_state_dir_without_xdg_is_under_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert load_settings().state_dir == tmp_path / ".local" / "state" / "registry-agent"


def test_snyk_port_wins_over_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SNYK_PORT", "17500")
    monkeypatch.setenv("PORT", "8000")
    settings = load_settings()
    assert settings.listen_port == 17500
    assert settings.port == 8000


def test_port_is_the_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "8000")
    assert load_settings().listen_port == 8000


def test_variable_names_are_case_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("snyk_port", "9001")
    assert load_settings().listen_port == 9001


@pytest.mark.parametrize("value", ["not-a-port", "", "0", "65536", "80.5", "-1"])
def test_invalid_snyk_port_names_the_variable_without_its_value(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("SNYK_PORT", value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    message = caught.value.message
    assert message.startswith("invalid configuration: SNYK_PORT: ")
    assert "PORT:" not in message.replace("SNYK_PORT:", "")  # PORT itself is not blamed
    if value:
        assert value not in message.replace("SNYK_PORT", "")
    assert caught.value.code == "CONFIGURATION"


def test_invalid_port_value_that_is_a_secret_is_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SNYK_PORT", SECRET_VALUE)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert "SNYK_PORT" in str(caught.value)
    assert SECRET_VALUE not in str(caught.value)
    assert SECRET_VALUE not in repr(caught.value)
    assert caught.value.__cause__ is None


def test_several_bad_variables_are_all_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SNYK_PORT", "x")
    monkeypatch.setenv("REGISTRY_MAX_RETRIES", "11")
    monkeypatch.setenv("LOG_LEVEL", "verbose")
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    for name in ("SNYK_PORT", "REGISTRY_MAX_RETRIES", "LOG_LEVEL"):
        assert name in caught.value.message


def test_cr_credentials_stay_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CR_CREDENTIALS", SECRET_VALUE)
    settings = load_settings()
    assert settings.cr_credentials is not None
    assert settings.cr_credentials.get_secret_value() == SECRET_VALUE
    assert SECRET_VALUE not in repr(settings)
    assert SECRET_VALUE not in str(settings)


@pytest.mark.parametrize(
    ("value", "hosts"),
    [
        ("", frozenset()),
        ("reg.local:5000", {"reg.local:5000"}),
        (" Reg.Local:5000 , ,other:80,", {"reg.local:5000", "other:80"}),
        ("a:1,a:1,A:1", {"a:1"}),
        (",,,", frozenset()),
    ],
)
def test_insecure_registries(monkeypatch: pytest.MonkeyPatch, value: str, hosts: set[str]) -> None:
    monkeypatch.setenv("INSECURE_REGISTRIES", value)
    assert load_settings().insecure_hosts == frozenset(hosts)


@pytest.mark.parametrize(
    ("value", "level"),
    [
        ("warn", "warning"),
        ("WARN", "warning"),
        ("Warning", "warning"),
        ("DEBUG", "debug"),
        ("error", "error"),
    ],
)
def test_log_level(monkeypatch: pytest.MonkeyPatch, value: str, level: str) -> None:
    monkeypatch.setenv("LOG_LEVEL", value)
    assert load_settings().log_level == level


@pytest.mark.parametrize("value", ["verbose", "trace", "critical", ""])
def test_unknown_log_level_is_rejected(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("LOG_LEVEL", value)
    with pytest.raises(ConfigurationError, match="LOG_LEVEL"):
        load_settings()


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("1", True), ("false", False), ("0", False)])
def test_snyk_disable_list_repos(monkeypatch: pytest.MonkeyPatch, value: str, expected: bool) -> None:
    monkeypatch.setenv("SNYK_DISABLE_LIST_REPOS", value)
    assert load_settings().snyk_disable_list_repos is expected


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("REGISTRY_MAX_RETRIES", "11"),
        ("REGISTRY_MAX_RETRIES", "-1"),
        ("REGISTRY_TIMEOUT_SECONDS", "0"),
        ("REGISTRY_RETRY_BUDGET_SECONDS", "-5"),
        ("MAX_ACTIVE_OPERATIONS", "0"),
        ("MAX_ACTIVE_OPERATIONS", "65"),
        ("SNYK_MAX_IMAGE_SIZE_IN_BYTES", "0"),
        ("SNYK_DISABLE_LIST_REPOS", "maybe"),
    ],
)
def test_out_of_range_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert f"{name}: " in caught.value.message


def test_numbers_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGISTRY_TIMEOUT_SECONDS", "2.5")
    monkeypatch.setenv("REGISTRY_MAX_RETRIES", "0")
    monkeypatch.setenv("SNYK_MAX_IMAGE_SIZE_IN_BYTES", "1048576")
    monkeypatch.setenv("MAX_ACTIVE_OPERATIONS", "4")
    settings = load_settings()
    assert settings.registry_timeout_seconds == 2.5
    assert settings.registry_max_retries == 0
    assert settings.snyk_max_image_size_in_bytes == 1048576
    assert settings.max_active_operations == 4


def test_configuration_table_lists_every_field() -> None:
    table = configuration_table()
    lines = table.splitlines()

    assert lines[0] == "| variable | default | meaning |"
    assert lines[1] == "| --- | --- | --- |"
    assert len(lines) == 2 + len(Settings.model_fields)
    names = [line.split("|")[1].strip() for line in lines[2:]]
    assert names == [f"`{name.upper()}`" for name in Settings.model_fields]
    for name, field in Settings.model_fields.items():
        row = next(line for line in lines if line.startswith(f"| `{name.upper()}` |"))
        assert field.description, f"{name} has no description for the README"
        assert row.endswith(f"| {field.description} |")


def test_configuration_table_defaults() -> None:
    rows = {
        line.split("|")[1].strip(): line.split("|")[2].strip()
        for line in configuration_table().splitlines()[2:]
    }
    assert rows["`SNYK_PORT`"] == "(unset)"
    assert rows["`INSECURE_REGISTRIES`"] == "(unset)"
    assert rows["`LOG_LEVEL`"] == "`info`"
    assert rows["`SNYK_DISABLE_LIST_REPOS`"] == "`false`"
    assert rows["`SNYK_MAX_IMAGE_SIZE_IN_BYTES`"] == "`2147483648`"
    assert rows["`STATE_DIR`"] == "see meaning"
