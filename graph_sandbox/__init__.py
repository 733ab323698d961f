"""A local stand-in for Microsoft Entra ID and Microsoft Graph's mail API, served over HTTPS.

The service's MSAL and requests code runs against it unmodified: it issues client-credentials
tokens, accepts sendMail, drafts and upload sessions, and enforces Graph's limits and error
formats. ``/_sandbox/...`` lets tests read the accepted messages and inject faults.

Run it with ``python -m graph_sandbox``; start it in-process with ``SandboxServer`` (server.py),
or build the Flask app alone with ``make_app`` (app.py).
"""
