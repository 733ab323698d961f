"""Run the job processor: ``python -m functions.process_job``."""

import asyncio

from common.logs import configure_logging
from common.settings import get_settings
from functions.process_job.consumer import serve
from functions.process_job.main import process_job


def main() -> None:
    settings = get_settings()
    configure_logging(settings.log_level)
    asyncio.run(serve(settings, process_job))


if __name__ == "__main__":
    main()
