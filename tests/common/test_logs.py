from common.logs import mask_address, mask_addresses_in_text


def test_mask_keeps_first_character_and_domain():
    assert mask_address("empfaenger@example.com") == "e***@example.com"


def test_mask_without_at_hides_everything():
    assert mask_address("nonsense") == "***"


def test_addresses_in_text_are_masked():
    text = "The requested user 'rechnungen@firma.example' is invalid; recipients a.b@example.com, <c@x.de>."

    assert mask_addresses_in_text(text) == ("The requested user 'r***@firma.example' is invalid; "
                                            "recipients a***@example.com, <c***@x.de>.")
