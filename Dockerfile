# One image for every part of the service; the command chooses the part:
#   send_email:  functions-framework --target send_email --source functions/send_email/main.py --port 8080
#   process_job: python -m functions.process_job
#   admin API:   functions-framework --target admin --source functions/admin/main.py --port 8081
#   admin CLI:   python -m functions.admin list
#   sandbox:     python -m graph_sandbox --host 0.0.0.0 --port 8443 --data-dir /data/sandbox
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY pyproject.toml .
COPY common ./common
COPY functions ./functions
COPY graph_sandbox ./graph_sandbox
COPY devstack ./devstack
# The functions serve their OpenAPI documents from here at /openapi.json.
COPY docs/openapi ./docs/openapi
RUN pip install --no-deps -e . \
    && useradd --system --uid 10001 --home /app mailservice \
    && mkdir -p /data/sandbox && chown -R mailservice /data

USER mailservice
EXPOSE 8080
CMD ["functions-framework", "--target", "send_email", "--source", "functions/send_email/main.py", "--port", "8080"]
