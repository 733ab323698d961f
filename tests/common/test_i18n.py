from common.i18n import language_from_accept, language_from_locale, translate


def test_accept_language_german_first():
    assert language_from_accept("de-DE,de;q=0.9,en;q=0.8") == "de"


def test_accept_language_prefers_higher_quality():
    assert language_from_accept("de;q=0.5, en;q=0.9") == "en"


def test_accept_language_unsupported_falls_back_to_english():
    assert language_from_accept("fr-FR") == "en"


def test_accept_language_missing_is_english():
    assert language_from_accept(None) == "en"


def test_accept_language_garbage_quality_is_ignored():
    assert language_from_accept("de;q=abc, en") == "en"


def test_locale_lang_german():
    assert language_from_locale({"LANG": "de_DE.UTF-8"}) == "de"


def test_locale_lc_all_overrides_lang():
    assert language_from_locale({"LC_ALL": "en_US.UTF-8", "LANG": "de_DE.UTF-8"}) == "en"


def test_locale_unset_is_english():
    assert language_from_locale({}) == "en"


def test_every_catalog_entry_has_german_and_english():
    from common.i18n import CATALOG

    incomplete = [key for key, texts in CATALOG.items() if set(texts) != {"en", "de"}]
    assert incomplete == []


def test_translate_formats_parameters():
    assert translate("unknown_app_tag", "de", app_tag="x").startswith("Für app_tag 'x'")
