import pytest

from common.settings import (DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_MAX_RECIPIENTS, MAX_MESSAGE_BYTES_CEILING, MIB,
                             Settings)


def base64_size(size):
    return 4 * -(-size // 3)


def test_default_body_limit_fits_default_message_as_base64():
    settings = Settings.from_env({})
    assert settings.max_request_body_bytes >= base64_size(DEFAULT_MAX_MESSAGE_BYTES) + MIB


def test_body_limit_follows_a_raised_message_limit():
    settings = Settings.from_env({"MAX_MESSAGE_BYTES": str(MAX_MESSAGE_BYTES_CEILING)})
    assert settings.max_request_body_bytes >= base64_size(MAX_MESSAGE_BYTES_CEILING) + MIB


def test_body_limit_can_be_set():
    assert Settings.from_env({"MAX_REQUEST_BODY_BYTES": "1000"}).max_request_body_bytes == 1000


def test_default_limits():
    settings = Settings.from_env({})
    assert (settings.max_message_bytes, settings.max_recipients) == (35 * MIB, DEFAULT_MAX_RECIPIENTS)


@pytest.mark.parametrize("value", [str(MAX_MESSAGE_BYTES_CEILING + 1), "0", "-5"])
def test_message_limit_outside_range_is_rejected(value):
    with pytest.raises(ValueError, match="MAX_MESSAGE_BYTES"):
        Settings.from_env({"MAX_MESSAGE_BYTES": value})


def test_message_limit_of_150_mib_is_accepted():
    assert Settings.from_env({"MAX_MESSAGE_BYTES": str(150 * MIB)}).max_message_bytes == 150 * MIB
