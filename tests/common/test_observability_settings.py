"""Tracing, metrics, log format and health settings read from the environment."""

import pytest

from common.settings import ObservabilitySettings


def settings(**env):
    return ObservabilitySettings.from_env(env)


def test_tracing_is_off_by_default():
    assert settings().trace_enabled is False


def test_metrics_are_off_without_tracing():
    assert settings().metrics_enabled is False


def test_metrics_follow_tracing():
    assert settings(DD_TRACE_ENABLED="true").metrics_enabled is True


def test_dogstatsd_disable_wins_over_tracing():
    assert settings(DD_TRACE_ENABLED="true", DD_DOGSTATSD_DISABLE="true").metrics_enabled is False


def test_metrics_can_be_on_without_tracing():
    assert settings(DD_DOGSTATSD_DISABLE="false").metrics_enabled is True


def test_logs_are_json_with_tracing_on():
    assert settings(DD_TRACE_ENABLED="true").json_logs is True


def test_log_format_text_wins_over_tracing():
    assert settings(DD_TRACE_ENABLED="true", LOG_FORMAT="text").json_logs is False


def test_log_format_json_without_tracing():
    assert settings(LOG_FORMAT="JSON").json_logs is True


def test_invalid_log_format_is_rejected():
    with pytest.raises(ValueError, match="LOG_FORMAT='xml' is invalid"):
        settings(LOG_FORMAT="xml")


def test_dogstatsd_url_defaults_to_agent_host_and_port():
    assert settings(DD_AGENT_HOST="datadog-agent").dogstatsd_url == "udp://datadog-agent:8125"


def test_dogstatsd_port_is_honoured():
    assert settings(DD_DOGSTATSD_PORT="9125").dogstatsd_url == "udp://127.0.0.1:9125"


def test_dogstatsd_url_wins_over_host():
    url = "unix:///var/run/datadog/dsd.socket"
    assert settings(DD_DOGSTATSD_URL=url, DD_AGENT_HOST="other").dogstatsd_url == url


def test_worker_health_server_is_off_by_default():
    assert settings().worker_health_port == 0
