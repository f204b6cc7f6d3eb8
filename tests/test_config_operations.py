"""The operations settings of API.md: metrics secret and per-caller limits."""

from __future__ import annotations

import pytest

from app.config import ConfigError, load_settings
from tests.test_config import VALID


def test_operations_defaults_follow_the_contract() -> None:
    settings = load_settings(VALID)
    assert settings.metrics_token is None
    assert settings.rate_limit_per_minute == 600
    assert settings.job_limit_per_minute == 30
    assert settings.max_open_jobs_per_user == 20
    assert settings.limits_key_prefix == "limits:"


def test_operations_settings_are_read_and_zero_turns_a_limit_off() -> None:
    settings = load_settings(
        {
            **VALID,
            "METRICS_TOKEN": "a-long-enough-scrape-secret",
            "RATE_LIMIT_PER_MINUTE": "0",
            "JOB_LIMIT_PER_MINUTE": "5",
            "MAX_OPEN_JOBS_PER_USER": "0",
            "LIMITS_KEY_PREFIX": "staging:limits:",
        }
    )
    assert settings.metrics_token == "a-long-enough-scrape-secret"
    assert (settings.rate_limit_per_minute, settings.job_limit_per_minute) == (0, 5)
    assert settings.max_open_jobs_per_user == 0
    assert settings.limits_key_prefix == "staging:limits:"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("METRICS_TOKEN", "short"),
        ("METRICS_TOKEN", "has a space in the middle"),
        ("RATE_LIMIT_PER_MINUTE", "-1"),
        ("RATE_LIMIT_PER_MINUTE", "many"),
        ("JOB_LIMIT_PER_MINUTE", "1.5"),
        ("MAX_OPEN_JOBS_PER_USER", "-3"),
        ("LIMITS_KEY_PREFIX", "bad prefix*"),
    ],
)
def test_malformed_operations_settings_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings({**VALID, name: value})
