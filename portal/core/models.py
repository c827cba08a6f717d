"""Core models: the Celery worker heartbeat that `/readyz` reads."""

from django.db import models


class WorkerHeartbeat(models.Model):
    """One row per live Celery worker, refreshed every few seconds by the worker itself."""

    hostname = models.CharField(max_length=255, unique=True)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    last_seen = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.hostname} (pid {self.pid})"


from .models_audit import AuditChainHead, AuditEvent  # noqa: E402,F401
