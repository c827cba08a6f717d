"""Feedback loops: "Was this useful?" answers on entity pages, docs pages and template runs, ideas for
the portal itself, the owning team's status and answer, and votes.

An item's owner team is decided once, when it is given (the entity's owner, the docs' entity's owner,
the template's owner, the platform team). Who may read it follows its entity live (see
`permissions.visible_feedback_q`): feedback on a private entity is as private as the entity.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse

from portal.techdocs.models import docs_url


class TargetKind(models.TextChoices):
    ENTITY = "entity", "Entity page"
    DOCS = "docs", "Docs page"
    TEMPLATE = "template", "Template run"
    PLATFORM = "platform", "The portal"


class Status(models.TextChoices):
    OPEN = "open", "Open"
    PLANNED = "planned", "Planned"
    DONE = "done", "Done"
    DECLINED = "declined", "Declined"


OPEN_STATUSES = (Status.OPEN, Status.PLANNED)


class FeedbackItem(models.Model):
    kind = models.CharField(max_length=10, choices=TargetKind.choices)
    # One answer per user per target: "entity:<ref>", "docs:<ref>#<path>", "run:<uid>"; "" for ideas
    # about the portal (a person may have many), which are kept single by `client_key` instead.
    target_key = models.CharField(max_length=400, blank=True)
    target_label = models.CharField(max_length=300)  # what it was about, as it was called then
    entity = models.ForeignKey("catalog.Entity", null=True, blank=True, on_delete=models.CASCADE,
                               related_name="feedback_items")
    docs_path = models.CharField(max_length=500, blank=True)
    run = models.ForeignKey("scaffolder.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    owner_team = models.ForeignKey("accounts.Team", null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="feedback_items")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="feedback_items")
    useful = models.BooleanField(null=True, blank=True)  # None: an idea, not a yes/no answer
    title = models.CharField(max_length=200, blank=True)
    comment = models.TextField(blank=True)  # Markdown, rendered through the docs' sanitiser
    client_key = models.CharField(max_length=64, blank=True)  # the form's token: a double submit is one row
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    answer = models.TextField(blank=True)
    answered_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    answered_at = models.DateTimeField(null=True, blank=True)
    # Bumped by every status/answer change: the author's notification of each change has its own key.
    version = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["author", "target_key"], condition=~Q(target_key=""),
                                    name="feedback_one_answer_per_target"),
            models.UniqueConstraint(fields=["author", "client_key"], condition=~Q(client_key=""),
                                    name="feedback_one_row_per_submission"),
        ]
        indexes = [
            models.Index(fields=["status", "created_at"], name="feedback_status_time"),
            models.Index(fields=["owner_team", "status"], name="feedback_team_status"),
            models.Index(fields=["author", "created_at"], name="feedback_author_time"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.kind} {self.target_label}"

    def get_absolute_url(self) -> str:
        return reverse("feedback:detail", args=[self.pk])

    @property
    def target_url(self) -> str:
        """The page or entry the feedback is about (runs are private to their creator: not linked here)."""
        entity = self.entity if self.entity_id else None
        if entity is None or self.kind not in (TargetKind.ENTITY, TargetKind.DOCS):
            return ""
        if self.kind == TargetKind.ENTITY:
            return entity.get_absolute_url()
        return docs_url(entity, self.docs_path)

    @property
    def is_request(self) -> bool:
        """Something to act on: an idea, or an answer with a comment (a bare yes/no is a tally)."""
        return self.kind == TargetKind.PLATFORM or bool(self.comment.strip())

    @property
    def heading(self) -> str:
        if self.title:
            return self.title
        verdict = {True: "Useful", False: "Not useful"}.get(self.useful, "Feedback")
        return f"{verdict}: {self.target_label}"


class Vote(models.Model):
    item = models.ForeignKey(FeedbackItem, on_delete=models.CASCADE, related_name="votes")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["item", "user"], name="feedback_one_vote_per_user")]

    def __str__(self) -> str:
        return f"{self.user_id} votes for #{self.item_id}"
