import json

import pytest

from common.errors import PoisonJob
from common.jobs import MAX_RETRY_AFTER_SECONDS, Job, Outcome, backoff_delay, backoff_range
from common.settings import DEFAULT_MAX_DELIVER, DEFAULT_RETRY_BASE_SECONDS, DEFAULT_RETRY_MAX_SECONDS


def test_job_round_trips_through_bytes():
    job = Job.new({"recipients": ["a@example.com"], "app_tag": "app"})
    assert Job.from_bytes(job.to_bytes()) == job


@pytest.mark.parametrize("data", [
    b"not json",
    b"\xff\xfe",
    b"[1, 2]",
    json.dumps({"version": 99, "job_id": "1", "app_tag": "a", "mail": {"recipients": ["x"]}}).encode(),
    json.dumps({"version": 1, "app_tag": "a", "mail": {"recipients": ["x"]}}).encode(),
    json.dumps({"version": 1, "job_id": "1", "app_tag": "a", "mail": {}}).encode(),
])
def test_unprocessable_message_is_poison(data):
    with pytest.raises(PoisonJob):
        Job.from_bytes(data)


def test_backoff_honours_retry_after():
    assert backoff_delay(1, 2.0, 300.0, retry_after=7) == 7


def test_backoff_honours_retry_after_beyond_backoff_cap():
    assert backoff_delay(1, 2.0, 300.0, retry_after=900) == 900


def test_backoff_caps_absurd_retry_after():
    assert backoff_delay(1, 2.0, 300.0, retry_after=86400) == MAX_RETRY_AFTER_SECONDS


def test_backoff_grows_with_attempts():
    assert backoff_delay(5, 2.0, 300.0) >= 16


def test_backoff_is_capped():
    assert backoff_delay(30, 2.0, 300.0) <= 300


def test_backoff_first_attempt_is_at_most_base():
    assert backoff_delay(1, 2.0, 300.0) <= 2


def total_backoff(attempts, base, cap, pick):
    # The last attempt is followed by no delay.
    return sum(pick(backoff_range(attempt, base, cap)) for attempt in range(1, attempts))


def test_default_attempts_span_about_an_hour():
    args = (DEFAULT_MAX_DELIVER, DEFAULT_RETRY_BASE_SECONDS, DEFAULT_RETRY_MAX_SECONDS)
    shortest = total_backoff(*args, pick=lambda bounds: bounds[0])
    longest = total_backoff(*args, pick=lambda bounds: bounds[1])

    assert 40 * 60 <= shortest
    assert longest <= 90 * 60
    assert 50 * 60 <= (shortest + longest) / 2 <= 75 * 60


def test_dead_outcome_carries_job_id():
    assert Outcome.dead("gave up", "job-1").job_id == "job-1"
