"""The baseline target of the benchmark: functions-framework returning 202 without any work.

The ingest's figures are read against this one from the same run, because the machines are noisy.
"""

import functions_framework

from common.http import apply_server_defaults

apply_server_defaults()


@functions_framework.http
def baseline(request):
    request.get_data()
    return '{"status": "queued"}', 202, {"Content-Type": "application/json"}
