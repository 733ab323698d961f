from common.recipients import display_name, normalise_recipients


def entries(*addresses, name=None):
    return [{"address": address, "name": name} for address in addresses]


def loaded(**lists):
    mail = {"recipients": [], "cc_recipients": [], "bcc_recipients": [], "reply_to": []}
    mail.update(lists)
    return normalise_recipients(mail)


def test_first_occurrence_is_kept_in_order():
    mail = loaded(recipients=entries("b@example.com", "a@example.com", "b@example.com"))
    assert mail["recipients"] == ["b@example.com", "a@example.com"]


def test_duplicate_in_cc_of_to_address_is_dropped():
    mail = loaded(recipients=entries("a@example.com"), cc_recipients=entries("A@EXAMPLE.COM"))
    assert mail["cc_recipients"] == []


def test_reply_to_may_repeat_a_recipient():
    mail = loaded(recipients=entries("a@example.com"), reply_to=entries("a@example.com"))
    assert mail["reply_to"] == ["a@example.com"]


def test_first_display_name_wins():
    mail = loaded(recipients=entries("a@example.com", name="Erster"),
                  cc_recipients=entries("A@example.com", name="Zweiter"))
    assert mail["display_names"] == {"a@example.com": "Erster"}


def test_name_of_dropped_duplicate_is_kept():
    mail = loaded(recipients=entries("a@example.com"), cc_recipients=entries("a@example.com", name="Anna"))
    assert display_name(mail, "a@example.com") == "Anna"


def test_display_name_lookup_ignores_case():
    mail = loaded(recipients=entries("Anna@Example.com", name="Anna"))
    assert display_name(mail, "anna@example.com") == "Anna"


def test_display_name_of_unnamed_address_is_none():
    assert display_name(loaded(recipients=entries("a@example.com")), "a@example.com") is None
