"""Operator-facing text in English and German, chosen by Accept-Language or the process locale.

Logs stay English; only API error messages and admin CLI output go through this catalog.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

ENGLISH = "en"
GERMAN = "de"
SUPPORTED_LANGUAGES = (ENGLISH, GERMAN)
DEFAULT_LANGUAGE = ENGLISH

# Each entry: message key -> text per language; placeholders use str.format names.
CATALOG: dict[str, dict[str, str]] = {
    # API errors
    "invalid_json": {
        ENGLISH: "The request body is not valid JSON (error at line {line}, column {column}). Send a JSON object.",
        GERMAN: "Der Request-Body ist kein gültiges JSON (Fehler in Zeile {line}, Spalte {column}). "
                "Senden Sie ein JSON-Objekt.",
    },
    "invalid_json_encoding": {
        ENGLISH: "The request body is not UTF-8 text (invalid byte at offset {offset}). Send a JSON object.",
        GERMAN: "Der Request-Body ist kein UTF-8-Text (ungültiges Byte an Position {offset}). "
                "Senden Sie ein JSON-Objekt.",
    },
    "invalid_json_depth": {
        ENGLISH: "The request body is JSON nested too deeply. Send a JSON object of ordinary depth.",
        GERMAN: "Der Request-Body ist zu tief verschachteltes JSON. Senden Sie ein JSON-Objekt normaler Tiefe.",
    },
    "json_not_object": {
        ENGLISH: "The request body is JSON of type {type}; expected a JSON object.",
        GERMAN: "Der Request-Body ist JSON vom Typ {type}; erwartet wird ein JSON-Objekt.",
    },
    "validation_failed": {
        ENGLISH: "The request has invalid fields: {names}. See 'fields' for each reason.",
        GERMAN: "Die Anfrage enthält ungültige Felder: {names}. Die Gründe stehen unter 'fields'.",
    },
    "unknown_app_tag": {
        ENGLISH: "No sender mailbox is configured for app_tag '{app_tag}'. "
                 "Ask an operator to add it with the admin CLI.",
        GERMAN: "Für app_tag '{app_tag}' ist kein Absenderpostfach eingerichtet. "
                "Bitten Sie einen Operator, es mit der Admin-CLI anzulegen.",
    },
    "queue_unavailable": {
        ENGLISH: "The job queue is unavailable ({reason}); the mail was not accepted. Retry later.",
        GERMAN: "Die Job-Warteschlange ist nicht erreichbar ({reason}); die Mail wurde nicht "
                "angenommen. Versuchen Sie es später erneut.",
    },
    "database_unavailable": {
        ENGLISH: "The database is unavailable ({reason}); the request was not processed. Retry later.",
        GERMAN: "Die Datenbank ist nicht erreichbar ({reason}); die Anfrage wurde nicht "
                "verarbeitet. Versuchen Sie es später erneut.",
    },
    "payload_too_large": {
        ENGLISH: "The job is {size} bytes, larger than the queue's limit of {limit} bytes.",
        GERMAN: "Der Job ist {size} Bytes groß, mehr als das Limit der Warteschlange von {limit} Bytes.",
    },
    "request_too_large": {
        ENGLISH: "The request body is larger than the limit of {limit} bytes. Send smaller attachments.",
        GERMAN: "Der Request-Body ist größer als das Limit von {limit} Bytes. Senden Sie kleinere Anhänge.",
    },
    "message_too_large": {
        ENGLISH: "The message is {size} bytes (attachments, subject and body), larger than the maximum "
                 "message size of {limit} bytes.",
        GERMAN: "Die Nachricht ist {size} Bytes groß (Anhänge, Betreff und Text), mehr als die maximale "
                "Nachrichtengröße von {limit} Bytes.",
    },
    "message_text_too_large": {
        ENGLISH: "The message without attachments is {size} bytes as Graph JSON, larger than the {limit} "
                 "bytes that Microsoft Graph accepts in one request. Shorten the body.",
        GERMAN: "Die Nachricht ohne Anhänge ist als Graph-JSON {size} Bytes groß, mehr als die {limit} "
                "Bytes, die Microsoft Graph in einer Anfrage annimmt. Kürzen Sie den Text.",
    },
    "not_found": {
        ENGLISH: "No endpoint {method} {path}. Use POST /send-email or GET /jobs/{{job_id}}.",
        GERMAN: "Kein Endpunkt {method} {path}. Verwenden Sie POST /send-email oder GET /jobs/{{job_id}}.",
    },
    "invalid_idempotency_key": {
        ENGLISH: "The Idempotency-Key header {value} is invalid: use 1 to {max_length} visible ASCII "
                 "characters without spaces, for example a UUID.",
        GERMAN: "Der Header Idempotency-Key {value} ist ungültig: erlaubt sind 1 bis {max_length} "
                "sichtbare ASCII-Zeichen ohne Leerzeichen, zum Beispiel eine UUID.",
    },
    "idempotency_key_reused": {
        ENGLISH: "The Idempotency-Key '{idempotency_key}' was used for job {job_id} with a different "
                 "request body. Use a new key for a new mail.",
        GERMAN: "Der Idempotency-Key '{idempotency_key}' wurde für Job {job_id} mit einem anderen "
                "Request-Body verwendet. Verwenden Sie für eine neue Mail einen neuen Key.",
    },
    "invalid_job_id": {
        ENGLISH: "The job id '{job_id}' is invalid; expected a UUID as returned by POST /send-email.",
        GERMAN: "Die Job-ID '{job_id}' ist ungültig; erwartet wird eine UUID, wie POST /send-email "
                "sie zurückgibt.",
    },
    "job_not_found": {
        ENGLISH: "No job with id '{job_id}' exists.",
        GERMAN: "Es gibt keinen Job mit der ID '{job_id}'.",
    },
    "job_not_dead": {
        ENGLISH: "Job {job_id} has status '{status}'; only dead jobs can be requeued.",
        GERMAN: "Job {job_id} hat den Status '{status}'; nur tote Jobs (dead) können neu eingereiht werden.",
    },
    "dead_letter_missing": {
        ENGLISH: "The dead-letter copy of job {job_id} no longer exists (dead letters expire after "
                 "{days} days), so it cannot be requeued. Ask the application to send the mail again.",
        GERMAN: "Die Dead-Letter-Kopie von Job {job_id} existiert nicht mehr (Dead Letters verfallen "
                "nach {days} Tagen), daher kann er nicht neu eingereiht werden. Bitten Sie die "
                "Anwendung, die Mail erneut zu senden.",
    },
    "method_not_allowed": {
        ENGLISH: "Method {method} is not allowed on {path}; use {allowed}.",
        GERMAN: "Die Methode {method} ist für {path} nicht erlaubt; verwenden Sie {allowed}.",
    },
    "internal_error": {
        ENGLISH: "An internal error occurred; it has been logged with request id {request_id}.",
        GERMAN: "Ein interner Fehler ist aufgetreten; er wurde mit der Request-ID {request_id} protokolliert.",
    },
    # Health endpoints and the health probe
    "ready": {
        ENGLISH: "Ready: {names} work.",
        GERMAN: "Bereit: {names} funktionieren.",
    },
    "not_ready": {
        ENGLISH: "Not ready: {names} failed. 'checks' gives each reason.",
        GERMAN: "Nicht bereit: {names} fehlgeschlagen. Die Gründe stehen unter 'checks'.",
    },
    "health_not_found": {
        ENGLISH: "No endpoint {path}. Use /healthz or /readyz.",
        GERMAN: "Kein Endpunkt {path}. Verwenden Sie /healthz oder /readyz.",
    },
    "health_probe_ok": {
        ENGLISH: "Healthy: {url} answered {detail}.",
        GERMAN: "Gesund: {url} antwortete {detail}.",
    },
    "health_probe_failed": {
        ENGLISH: "Unhealthy: {url} failed: {detail}",
        GERMAN: "Nicht gesund: {url} fehlgeschlagen: {detail}",
    },
    "api_key_missing": {
        ENGLISH: "The request carries no API key. Send it as 'Authorization: Bearer <api key>' "
                 "or in the X-API-Key header.",
        GERMAN: "Die Anfrage enthält keinen API-Schlüssel. Senden Sie ihn als "
                "'Authorization: Bearer <API-Schlüssel>' oder im Header X-API-Key.",
    },
    "api_key_invalid": {
        ENGLISH: "The API key is invalid, revoked or expired. Ask an operator for the current key "
                 "of your app_tag.",
        GERMAN: "Der API-Schlüssel ist ungültig, widerrufen oder abgelaufen. Bitten Sie einen Operator "
                "um den aktuellen Schlüssel Ihres app_tag.",
    },
    "authorization_malformed": {
        ENGLISH: "The Authorization header is not of the form 'Bearer <credential>'.",
        GERMAN: "Der Authorization-Header hat nicht die Form 'Bearer <Zugangsdaten>'.",
    },
    "admin_token_invalid": {
        ENGLISH: "The admin token is missing or wrong. Send 'Authorization: Bearer <ADMIN_TOKEN>'.",
        GERMAN: "Das Admin-Token fehlt oder ist falsch. Senden Sie 'Authorization: Bearer <ADMIN_TOKEN>'.",
    },
    "app_tag_mismatch": {
        ENGLISH: "The API key belongs to app_tag '{key_app_tag}', but the request names app_tag "
                 "'{app_tag}'. Send the key of that app_tag, or leave app_tag out.",
        GERMAN: "Der API-Schlüssel gehört zu app_tag '{key_app_tag}', die Anfrage nennt aber app_tag "
                "'{app_tag}'. Senden Sie den Schlüssel dieses app_tag oder lassen Sie app_tag weg.",
    },
    "sender_disabled": {
        ENGLISH: "The sender of app_tag '{app_tag}' is disabled, so no mail is accepted for it. "
                 "Ask an operator to enable it.",
        GERMAN: "Der Absender von app_tag '{app_tag}' ist deaktiviert, daher wird keine Mail dafür "
                "angenommen. Bitten Sie einen Operator, ihn zu aktivieren.",
    },
    "admin_not_found": {
        ENGLISH: "No endpoint {method} {path}. GET /openapi.json lists the admin endpoints.",
        GERMAN: "Kein Endpunkt {method} {path}. GET /openapi.json listet die Admin-Endpunkte.",
    },
    # Field validation
    "field_required": {
        ENGLISH: "Missing required field.",
        GERMAN: "Pflichtfeld fehlt.",
    },
    "field_null": {
        ENGLISH: "Field may not be null.",
        GERMAN: "Feld darf nicht null sein.",
    },
    "field_unknown": {
        ENGLISH: "Unknown field.",
        GERMAN: "Unbekanntes Feld.",
    },
    "field_not_string": {
        ENGLISH: "Not a string; expected text.",
        GERMAN: "Kein String; erwartet wird Text.",
    },
    "field_not_list": {
        ENGLISH: "Not a list; expected a JSON array.",
        GERMAN: "Keine Liste; erwartet wird ein JSON-Array.",
    },
    "field_not_object": {
        ENGLISH: "Not an object; expected a JSON object.",
        GERMAN: "Kein Objekt; erwartet wird ein JSON-Objekt.",
    },
    "field_invalid_email": {
        ENGLISH: "'{input}' is not a valid e-mail address.",
        GERMAN: "'{input}' ist keine gültige E-Mail-Adresse.",
    },
    "field_empty_list": {
        ENGLISH: "At least one address is required.",
        GERMAN: "Mindestens eine Adresse ist erforderlich.",
    },
    "field_invalid_base64": {
        ENGLISH: "Not valid base64; expected the standard alphabet (A-Z, a-z, 0-9, +, /) with = padding.",
        GERMAN: "Kein gültiges Base64; erwartet wird das Standardalphabet (A-Z, a-z, 0-9, +, /) mit "
                "=-Auffüllung.",
    },
    "field_empty": {
        ENGLISH: "Must not be empty.",
        GERMAN: "Darf nicht leer sein.",
    },
    "field_not_recipient": {
        ENGLISH: "Not a recipient; expected an address or an object with 'address' and 'name'.",
        GERMAN: "Kein Empfänger; erwartet wird eine Adresse oder ein Objekt mit 'address' und 'name'.",
    },
    "field_not_boolean": {
        ENGLISH: "Not a boolean; expected true or false.",
        GERMAN: "Kein Boolean; erwartet wird true oder false.",
    },
    "field_line_break": {
        ENGLISH: "Must not contain a line break (CR or LF).",
        GERMAN: "Darf keinen Zeilenumbruch (CR oder LF) enthalten.",
    },
    "field_invalid_importance": {
        ENGLISH: "'{input}' is not a valid importance; expected low, normal or high.",
        GERMAN: "'{input}' ist keine gültige Wichtigkeit; erwartet wird low, normal oder high.",
    },
    "field_header_not_custom": {
        ENGLISH: "Header '{name}' is not allowed: Microsoft Graph accepts only custom headers whose "
                 "names start with 'X-'.",
        GERMAN: "Der Header '{name}' ist nicht erlaubt: Microsoft Graph nimmt nur eigene Header an, "
                "deren Namen mit 'X-' beginnen.",
    },
    "field_header_invalid_name": {
        ENGLISH: "'{name}' is not a valid header name; use printable ASCII characters without ':' "
                 "or spaces.",
        GERMAN: "'{name}' ist kein gültiger Header-Name; erlaubt sind druckbare ASCII-Zeichen ohne ':' "
                "und Leerzeichen.",
    },
    "field_inline_without_content_id": {
        ENGLISH: "An inline attachment needs a content_id, which the HTML body references as "
                 "cid:<content_id>.",
        GERMAN: "Ein Inline-Anhang braucht eine content_id, auf die der HTML-Text mit cid:<content_id> "
                "verweist.",
    },
    "field_invalid_content_id": {
        ENGLISH: "'{input}' is not a valid content_id; use visible ASCII characters without spaces, "
                 "'<' or '>'.",
        GERMAN: "'{input}' ist keine gültige content_id; erlaubt sind sichtbare ASCII-Zeichen ohne "
                "Leerzeichen, '<' und '>'.",
    },
    "field_too_many_recipients": {
        ENGLISH: "The mail has {count} distinct recipients in recipients, cc_recipients and "
                 "bcc_recipients; at most {limit} are allowed.",
        GERMAN: "Die Mail hat {count} verschiedene Empfänger in recipients, cc_recipients und "
                "bcc_recipients; erlaubt sind höchstens {limit}.",
    },
    "field_body_missing": {
        ENGLISH: "Give body_content or html_body_content.",
        GERMAN: "Geben Sie body_content oder html_body_content an.",
    },
    "field_invalid_app_tag": {
        ENGLISH: "'{input}' is not a valid app_tag: use 2 to 50 lower-case letters, digits, '-' or '_'.",
        GERMAN: "'{input}' ist kein gültiger app_tag: erlaubt sind 2 bis 50 Kleinbuchstaben, "
                "Ziffern, '-' oder '_'.",
    },
    "field_not_boolean": {
        ENGLISH: "Not a boolean; expected true or false.",
        GERMAN: "Kein Boolean; erwartet wird true oder false.",
    },
    "field_not_integer": {
        ENGLISH: "Not an integer; expected a whole number.",
        GERMAN: "Keine ganze Zahl; erwartet wird eine Zahl ohne Nachkommastellen.",
    },
    "field_out_of_range": {
        ENGLISH: "Must be between {min} and {max}.",
        GERMAN: "Muss zwischen {min} und {max} liegen.",
    },
    "field_too_long": {
        ENGLISH: "Longer than {max} characters.",
        GERMAN: "Länger als {max} Zeichen.",
    },
    "field_no_changes": {
        ENGLISH: "Give at least one of mailbox, display_name or enabled.",
        GERMAN: "Geben Sie mindestens eines von mailbox, display_name oder enabled an.",
    },
    # Admin CLI help (argparse)
    "cli_help_description": {
        ENGLISH: "Manage the sender mailbox of each application (app_tag), its API keys and dead jobs.",
        GERMAN: "Verwaltet das Absenderpostfach jeder Anwendung (app_tag), ihre API-Schlüssel und tote Jobs.",
    },
    "cli_help_init": {
        ENGLISH: "create or update the database schema",
        GERMAN: "Datenbankschema anlegen oder aktualisieren",
    },
    "cli_help_add": {
        ENGLISH: "add a sender: the mailbox an app_tag sends from",
        GERMAN: "Absender anlegen: das Postfach, aus dem ein app_tag sendet",
    },
    "cli_help_tag": {
        ENGLISH: "the application's app_tag",
        GERMAN: "der app_tag der Anwendung",
    },
    "cli_help_email": {
        ENGLISH: "the mailbox address it sends from",
        GERMAN: "die Adresse des Postfachs, aus dem sie sendet",
    },
    "cli_help_name": {
        ENGLISH: "display name of the sender in sent mail",
        GERMAN: "Anzeigename des Absenders in gesendeten Mails",
    },
    "cli_help_add_json": {
        ENGLISH: "print the sender and its api_key as a JSON object",
        GERMAN: "Absender und api_key als JSON-Objekt ausgeben",
    },
    "cli_help_list": {
        ENGLISH: "list the senders, whether each is enabled and when its key was created",
        GERMAN: "Absender auflisten, ob sie aktiv sind und wann ihr Schlüssel angelegt wurde",
    },
    "cli_help_delete": {
        ENGLISH: "delete the sender of an app_tag and its API keys",
        GERMAN: "Absender eines app_tag und seine API-Schlüssel löschen",
    },
    "cli_help_disable": {
        ENGLISH: "reject the mail of an app_tag with 403 until it is enabled",
        GERMAN: "Mails eines app_tag mit 403 ablehnen, bis er wieder aktiviert ist",
    },
    "cli_help_enable": {
        ENGLISH: "accept the mail of a disabled app_tag again",
        GERMAN: "Mails eines deaktivierten app_tag wieder annehmen",
    },
    "cli_help_keys": {
        ENGLISH: "manage API keys",
        GERMAN: "API-Schlüssel verwalten",
    },
    "cli_help_rotate": {
        ENGLISH: "issue a new API key for an app_tag and retire the old one",
        GERMAN: "neuen API-Schlüssel für einen app_tag ausstellen und den alten ablösen",
    },
    "cli_help_grace": {
        ENGLISH: "seconds the previous key keeps working (default 0: it stops at once; at most {max})",
        GERMAN: "Sekunden, die der bisherige Schlüssel weiter gilt (Standard 0: er endet sofort; höchstens {max})",
    },
    "cli_help_rotate_json": {
        ENGLISH: "print the new api_key as a JSON object",
        GERMAN: "den neuen api_key als JSON-Objekt ausgeben",
    },
    "cli_help_jobs": {
        ENGLISH: "list dead jobs and requeue one",
        GERMAN: "tote Jobs auflisten und einen neu einreihen",
    },
    "cli_help_dead": {
        ENGLISH: "list the dead jobs, oldest first",
        GERMAN: "tote Jobs auflisten, älteste zuerst",
    },
    "cli_help_requeue": {
        ENGLISH: "send a dead job again, with a new attempt budget",
        GERMAN: "einen toten Job erneut senden, mit neuem Versuchskontingent",
    },
    "cli_help_job_id": {
        ENGLISH: "the job id (a UUID)",
        GERMAN: "die Job-ID (eine UUID)",
    },
    # Admin CLI
    "cli_schema_applied": {
        ENGLISH: "Database schema is up to date (version {version}).",
        GERMAN: "Das Datenbankschema ist aktuell (Version {version}).",
    },
    "cli_sender_added": {
        ENGLISH: "Sender added: {app_tag} -> {mailbox}",
        GERMAN: "Absender angelegt: {app_tag} -> {mailbox}",
    },
    "cli_sender_exists": {
        ENGLISH: "A sender for app_tag '{app_tag}' already exists. 'list' shows it, 'keys rotate -tag "
                 "{app_tag}' issues a new API key for it; or delete it first, or use another tag.",
        GERMAN: "Für app_tag '{app_tag}' gibt es schon einen Absender. 'list' zeigt ihn, 'keys rotate -tag "
                "{app_tag}' erzeugt einen neuen API-Schlüssel dafür; oder löschen Sie ihn zuerst, oder "
                "verwenden Sie einen anderen Tag.",
    },
    "cli_sender_deleted": {
        ENGLISH: "Sender deleted: {app_tag}",
        GERMAN: "Absender gelöscht: {app_tag}",
    },
    "cli_sender_not_found": {
        ENGLISH: "No sender with app_tag '{app_tag}' exists. The CLI's 'list' and GET /senders show "
                 "the configured senders.",
        GERMAN: "Es gibt keinen Absender mit app_tag '{app_tag}'. 'list' in der CLI und GET /senders "
                "zeigen die eingerichteten Absender.",
    },
    "cli_no_senders": {
        ENGLISH: "No senders configured. Add one with: add -tag TAG -email ADDRESS",
        GERMAN: "Keine Absender eingerichtet. Legen Sie einen an mit: add -tag TAG -email ADRESSE",
    },
    "cli_list_header": {
        ENGLISH: "APP_TAG|MAILBOX|ENABLED|KEY CREATED|CREATED",
        GERMAN: "APP_TAG|POSTFACH|AKTIV|SCHLÜSSEL ANGELEGT|ANGELEGT",
    },
    "cli_invalid_email": {
        ENGLISH: "'{email}' is not a valid e-mail address.",
        GERMAN: "'{email}' ist keine gültige E-Mail-Adresse.",
    },
    "cli_invalid_tag": {
        ENGLISH: "'{app_tag}' is not a valid app_tag: use 2 to 50 lower-case letters, digits, '-' or '_'.",
        GERMAN: "'{app_tag}' ist kein gültiger app_tag: erlaubt sind 2 bis 50 Kleinbuchstaben, "
                "Ziffern, '-' oder '_'.",
    },
    "cli_api_key_issued": {
        ENGLISH: "API key of {app_tag} (shown only now; store it where the application keeps secrets):\n{api_key}",
        GERMAN: "API-Schlüssel von {app_tag} (wird nur jetzt angezeigt; legen Sie ihn bei den Secrets der "
                "Anwendung ab):\n{api_key}",
    },
    "cli_previous_keys_revoked": {
        ENGLISH: "The previous keys of {app_tag} no longer work.",
        GERMAN: "Die bisherigen Schlüssel von {app_tag} gelten nicht mehr.",
    },
    "cli_previous_keys_expire": {
        ENGLISH: "The previous keys of {app_tag} work until {expires_at}.",
        GERMAN: "Die bisherigen Schlüssel von {app_tag} gelten bis {expires_at}.",
    },
    "cli_sender_enabled": {
        ENGLISH: "Sender enabled: {app_tag}",
        GERMAN: "Absender aktiviert: {app_tag}",
    },
    "cli_sender_disabled": {
        ENGLISH: "Sender disabled: {app_tag} (its mail is rejected with 403 until it is enabled again)",
        GERMAN: "Absender deaktiviert: {app_tag} (seine Mails werden mit 403 abgelehnt, bis er wieder "
                "aktiviert ist)",
    },
    "cli_yes": {
        ENGLISH: "yes",
        GERMAN: "ja",
    },
    "cli_no": {
        ENGLISH: "no",
        GERMAN: "nein",
    },
    "cli_no_key": {
        ENGLISH: "none (run: keys rotate -tag {app_tag})",
        GERMAN: "keiner (ausführen: keys rotate -tag {app_tag})",
    },
    "cli_invalid_grace": {
        ENGLISH: "'{value}' is not a valid grace period: use whole seconds from 0 to {max}.",
        GERMAN: "'{value}' ist keine gültige Übergangszeit: erlaubt sind ganze Sekunden von 0 bis {max}.",
    },
    "cli_no_dead_jobs": {
        ENGLISH: "No dead jobs.",
        GERMAN: "Keine toten Jobs.",
    },
    "cli_dead_jobs_header": {
        ENGLISH: "JOB_ID|APP_TAG|ATTEMPTS|DEAD_SINCE|LAST_ERROR",
        GERMAN: "JOB_ID|APP_TAG|VERSUCHE|TOT_SEIT|LETZTER_FEHLER",
    },
    "cli_job_requeued": {
        ENGLISH: "Job {job_id} requeued; a worker sends it again.",
        GERMAN: "Job {job_id} neu eingereiht; ein Worker sendet ihn erneut.",
    },
    "cli_error": {
        ENGLISH: "Error: {message}",
        GERMAN: "Fehler: {message}",
    },
}


def translate(key: str, language: str = DEFAULT_LANGUAGE, **params: object) -> str:
    """Return the catalog text for key in language (English when missing), formatted with params."""
    texts = CATALOG[key]
    template = texts.get(language) or texts[DEFAULT_LANGUAGE]
    return template.format(**params)


def language_from_locale(environ: Mapping[str, str] | None = None) -> str:
    """Pick the CLI language from LC_ALL, LC_MESSAGES or LANG, in POSIX precedence order."""
    env = os.environ if environ is None else environ
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(name, "")
        if value:
            return GERMAN if value.lower().startswith("de") else ENGLISH
    return DEFAULT_LANGUAGE


def language_from_accept(header: str | None) -> str:
    """Pick the response language from an Accept-Language header (RFC 9110, section 12.5.4)."""
    if not header:
        return DEFAULT_LANGUAGE

    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate(header.split(",")):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in SUPPORTED_LANGUAGES and quality > 0:
            ranked.append((-quality, position, primary))

    if not ranked:
        return DEFAULT_LANGUAGE
    return min(ranked)[2]
