"""The Celery application. Tasks live in each app's `tasks.py`."""

import os
import signal

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.dev")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.autodiscover_tasks(["portal.core", "portal.accounts"])


@worker_process_init.connect
def _leave_sigterm_to_the_main_process(**kwargs) -> None:
    """A pool process ignores SIGTERM; the worker's main process answers it with a warm shutdown
    (stop taking tasks, let the running ones finish). Otherwise a SIGTERM sent to the whole process
    group (systemd's default KillMode=control-group, `kill -TERM -<pgid>`) would end every running
    task half-way: billiard's handler raises SystemExit inside the task. Hard time limits and the
    main process's own exit (PR_SET_PDEATHSIG) still stop a pool process with SIGKILL."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
