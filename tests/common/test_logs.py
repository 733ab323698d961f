import json
import logging
import sys

from common.logs import JsonFormatter, job_context, mask_address, mask_addresses_in_text


def test_mask_keeps_first_character_and_domain():
    assert mask_address("empfaenger@example.com") == "e***@example.com"


def test_mask_without_at_hides_everything():
    assert mask_address("nonsense") == "***"


def json_line(message="Job sent", exc_info=None, **attributes):
    with job_context("job-1", "rechnungssystem"):
        record = logging.getLogger("test").makeRecord("test", logging.INFO, __file__, 1, message, (), exc_info)
    record.__dict__.update(attributes)
    return json.loads(JsonFormatter().format(record))


def test_json_line_carries_job_context():
    line = json_line()
    assert line["job_id"] == "job-1"
    assert line["app_tag"] == "rechnungssystem"
    assert line["message"] == "Job sent"


def test_json_line_carries_trace_and_span_id():
    line = json_line(**{"dd.trace_id": "6b1327410000000016055a5745d58395", "dd.span_id": "1702"})
    assert line["dd.trace_id"] == "6b1327410000000016055a5745d58395"
    assert line["dd.span_id"] == "1702"


def test_json_line_timestamp_is_utc_iso8601():
    assert json_line()["timestamp"].endswith("Z")


def test_json_line_carries_exception_fields():
    try:
        raise ValueError("kaputt")
    except ValueError:
        line = json_line(exc_info=sys.exc_info())
    assert line["error.kind"] == "ValueError"
    assert line["error.message"] == "kaputt"
    assert "Traceback" in line["error.stack"]
def test_addresses_in_text_are_masked():
    text = "The requested user 'rechnungen@firma.example' is invalid; recipients a.b@example.com, <c@x.de>."

    assert mask_addresses_in_text(text) == ("The requested user 'r***@firma.example' is invalid; "
                                            "recipients a***@example.com, <c***@x.de>.")
