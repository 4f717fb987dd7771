"""``shared.registry.retry``: ``Retry-After`` and backoff.

Expected behaviour: registries.md §1.6 ("429 SHOULD carry Retry-After (RFC 9110)"; containers/image
honours it "as seconds **or** HTTP-date"; retry on 408/429/5xx, as in go-containerregistry's list)
and RFC 9110 §10.2.3 (``Retry-After = HTTP-date / delay-seconds``, delay-seconds = 1*DIGIT; a date in
the past means "now"). Backoff: the module's docstring (exponential with jitter) and ``RetryPolicy``
defaults, mirrored by the ``REGISTRY_MAX_RETRIES`` / ``REGISTRY_RETRY_BUDGET_SECONDS`` settings.
"""

from __future__ import annotations

import email.utils

import pytest

from shared.registry import retry
from shared.registry.retry import RETRY_STATUSES, RetryPolicy, parse_retry_after

NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z


def http_date(timestamp: float) -> str:
    return email.utils.formatdate(timestamp, usegmt=True)


@pytest.mark.parametrize(
    ("value", "seconds"), [("0", 0.0), ("1", 1.0), ("120", 120.0), (" 7 ", 7.0), ("0042", 42.0)]
)
def test_delay_seconds(value: str, seconds: float) -> None:
    assert parse_retry_after(value, now=NOW) == seconds


def test_future_http_date() -> None:
    assert parse_retry_after(http_date(NOW + 90), now=NOW) == pytest.approx(90.0)


def test_past_http_date_means_now() -> None:
    assert parse_retry_after(http_date(NOW - 3600), now=NOW) == 0.0


def test_rfc_example_date() -> None:
    # RFC 9110's own example, 30 s ahead of "now".
    value = "Fri, 31 Dec 1999 23:59:59 GMT"
    when = email.utils.parsedate_to_datetime(value).timestamp()
    assert parse_retry_after(value, now=when - 30) == pytest.approx(30.0)


def test_http_date_against_the_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retry.time, "time", lambda: NOW)
    assert parse_retry_after(http_date(NOW + 5)) == pytest.approx(5.0)


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "   ",
        "soon",
        "-1",
        "1.5",
        "+5",
        "5s",
        "1e3",
        "Thu, 99 Foo 2024 25:61:61 GMT",
        "²",
        "¹²",
        "\u0663",
    ],
)
def test_garbage_is_none(value: str | None) -> None:
    assert parse_retry_after(value, now=NOW) is None


def test_retry_statuses() -> None:
    assert {408, 429, 500, 502, 503, 504} == RETRY_STATUSES
    assert not RETRY_STATUSES & {400, 401, 403, 404, 405, 416}


def test_policy_defaults_match_settings_defaults() -> None:
    policy = RetryPolicy()
    assert policy.max_retries == 4
    assert policy.budget_seconds == 60.0


@pytest.mark.parametrize("attempt", range(12))
def test_backoff_bounds(monkeypatch: pytest.MonkeyPatch, attempt: int) -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=30.0)
    ceiling = min(30.0, 0.5 * 2**attempt)

    monkeypatch.setattr(retry.random, "random", lambda: 0.0)
    assert policy.backoff(attempt) == pytest.approx(ceiling / 2)
    monkeypatch.setattr(retry.random, "random", lambda: 0.999999)
    low_jitter_high = policy.backoff(attempt)
    assert ceiling / 2 < low_jitter_high <= ceiling


def test_backoff_grows_then_caps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retry.random, "random", lambda: 1.0)
    policy = RetryPolicy(base_delay=1.0, max_delay=16.0)
    assert [policy.backoff(n) for n in range(7)] == [1.0, 2.0, 4.0, 8.0, 16.0, 16.0, 16.0]


def test_backoff_with_real_jitter_stays_in_bounds() -> None:
    policy = RetryPolicy()
    for attempt in range(8):
        ceiling = min(policy.max_delay, policy.base_delay * 2**attempt)
        samples = [policy.backoff(attempt) for _ in range(200)]
        assert all(ceiling / 2 <= s <= ceiling for s in samples)
        assert len(set(samples)) > 1  # jittered, so agents do not retry in step
