"""``celery`` whose pool processes start ``ROLLCALL_TEST_SLOW_START_S`` late (a big gallery, a slow disk).

Run as ``python -m tests.ops.slow_start_worker -A tasks worker ...``: the real worker, with one more
``worker_process_init`` handler that sleeps before the models load.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from celery.__main__ import main
from celery.signals import worker_process_init


def _slow_start(**_: Any) -> None:
    time.sleep(float(os.environ["ROLLCALL_TEST_SLOW_START_S"]))


if __name__ == "__main__":
    worker_process_init.connect(_slow_start)
    sys.argv[0] = "celery"
    sys.exit(main())
