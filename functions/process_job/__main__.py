"""Run the job processor: ``python -m functions.process_job``."""

import asyncio

from common.health import database_check
from common.settings import SERVICE_WORKER, get_settings
from common.tracing import configure_entry_point
from functions.process_job.consumer import serve
from functions.process_job.main import process_job, services


def main() -> None:
    settings = get_settings()
    configure_entry_point(SERVICE_WORKER, settings.log_level)
    asyncio.run(serve(settings, process_job, {"postgres": database_check(services().db)}))


if __name__ == "__main__":
    main()
