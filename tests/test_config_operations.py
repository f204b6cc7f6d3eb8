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
        ("MAX_ACTIVE_JOBS_PER_USER", "0"),
        ("MAX_ACTIVE_JOBS_PER_USER", "some"),
        ("MAX_JOB_RESULT_BYTES", "100"),
        ("MAX_CHILDREN_PER_PARENT", "0"),
    ],
)
def test_malformed_operations_settings_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings({**VALID, name: value})


def test_fair_share_is_a_third_of_the_concurrency_unless_set() -> None:
    assert load_settings(VALID).max_active_jobs_per_user == 3  # WORKER_CONCURRENCY 10
    for concurrency, share in (("1", 1), ("2", 1), ("6", 2), ("30", 10)):
        settings = load_settings({**VALID, "WORKER_CONCURRENCY": concurrency})
        assert settings.max_active_jobs_per_user == share
    assert load_settings({**VALID, "MAX_ACTIVE_JOBS_PER_USER": "7"}).max_active_jobs_per_user == 7


def test_bounds_on_answers_have_their_defaults() -> None:
    settings = load_settings(VALID)
    assert settings.max_job_result_bytes == 1_048_576
    assert settings.max_children_per_parent == 50
