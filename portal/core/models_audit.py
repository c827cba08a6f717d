"""Audit models (kept apart from core.models for readability; registered through core.models)."""

from django.db import models


class AuditChainHead(models.Model):
    """A single row holding the chain's last sequence number and hash; locked while appending."""

    seq = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64)

    class Meta:
        app_label = "core"

    def __str__(self) -> str:
        return f"head #{self.seq}"


class AuditEvent(models.Model):
    seq = models.BigIntegerField(unique=True)
    created_at = models.CharField(max_length=40, db_index=True)
    actor = models.CharField(max_length=150, db_index=True)
    action = models.CharField(max_length=100, db_index=True)
    target = models.CharField(max_length=400, db_index=True)
    payload = models.TextField()
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        app_label = "core"
        ordering = ["seq"]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.target}"
