from common.logs import mask_address


def test_mask_keeps_first_character_and_domain():
    assert mask_address("empfaenger@example.com") == "e***@example.com"


def test_mask_without_at_hides_everything():
    assert mask_address("nonsense") == "***"
