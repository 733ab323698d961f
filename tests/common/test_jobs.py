import json

import pytest

from common.errors import PoisonJob
from common.jobs import Job, backoff_delay


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


def test_backoff_caps_retry_after():
    assert backoff_delay(1, 2.0, 300.0, retry_after=3600) == 300


def test_backoff_grows_with_attempts():
    assert backoff_delay(5, 2.0, 300.0) >= 16


def test_backoff_is_capped():
    assert backoff_delay(30, 2.0, 300.0) <= 300


def test_backoff_first_attempt_is_at_most_base():
    assert backoff_delay(1, 2.0, 300.0) <= 2
