"""Every write of the feedback app: giving feedback (a "Was this useful?" answer or an idea for the
portal), answering it as its owning team, and voting. Keyword-only, one transaction each; the owning
team and the author are notified through governance's outbox (published after commit, relayed if the
broker is down) and inbox/e-mail delivery."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from catalog import selectors as catalog_selectors
from catalog.models import Entity
from portal.accounts import permissions
from portal.accounts.models import Team
from portal.core.audit import audit_record
from portal.governance import outbox
from portal.scaffolder import selectors as scaffolder_selectors
from portal.techdocs import selectors as techdocs_selectors
from portal.techdocs.models import docs_url

from . import analytics, conf
from .models import OPEN_STATUSES, FeedbackItem, Status, TargetKind, Vote

TARGET_KEY_MAX = FeedbackItem._meta.get_field("target_key").max_length
NOT_FOUND = "No such page, entity or run to give feedback on."


class FeedbackError(Exception):
    """A refusal with its HTTP status and a message naming what is wrong (and the field, if one)."""

    def __init__(self, message: str, *, status: int = 400, field: str = "") -> None:
        super().__init__(message)
        self.message, self.status, self.field = message, status, field


@dataclass(frozen=True)
class Target:
    kind: str
    key: str
    label: str
    url: str
    entity: Entity | None = None
    docs_path: str = ""
    run: Any = None
    owner_team: Team | None = None


def target_key(kind: str, target: str, path: str = "") -> str:
    """The key of one user's single answer about a target ("" for ideas about the portal)."""
    target, path = str(target or "").strip().lower(), (path or "").strip().lstrip("/")
    if kind == TargetKind.ENTITY:
        return f"entity:{target}"
    if kind == TargetKind.DOCS:
        key = f"docs:{target}#{path}"
        # Paths may be 500 characters: a key too long for the column is a digest of the whole key (a cut
        # would make two pages sharing a prefix one answer); keys that fit stay as they always were.
        return key if len(key) <= TARGET_KEY_MAX else f"docs:sha256:{hashlib.sha256(key.encode()).hexdigest()}"
    if kind == TargetKind.TEMPLATE:
        return f"run:{target}"
    return ""


def platform_team() -> Team | None:
    return Team.objects.filter(name=conf.platform_team_name()).first()


def resolve_target(user, *, kind: str, target: str = "", path: str = "") -> Target:
    """What `kind` + `target` (+ docs `path`) name, if the user may see it. Missing and hidden targets
    are the same 404; an unknown kind is a 400."""
    if kind not in TargetKind.values:
        raise FeedbackError(f"Unknown kind '{kind[:40]}'; use one of: {', '.join(TargetKind.values)}.",
                            field="kind")
    target, path = (target or "").strip(), (path or "").strip().lstrip("/")
    if kind == TargetKind.PLATFORM:
        return Target(kind=kind, key="", label="Plinth (the portal)", url="/", owner_team=platform_team())
    if not target or len(target) > 300 or len(path) > 500:
        raise FeedbackError(NOT_FOUND, status=404, field="target")
    if kind == TargetKind.TEMPLATE:
        return _run_target(user, target)
    entity = (catalog_selectors.visible_entities(user).select_related("owner_team")
              .filter(ref=target.lower()).first())
    if entity is None:
        raise FeedbackError(NOT_FOUND, status=404, field="target")
    owner = entity.owner_team or platform_team()
    if kind == TargetKind.ENTITY:
        return Target(kind=kind, key=target_key(kind, entity.ref), label=entity.display_name,
                      url=entity.get_absolute_url(), entity=entity, owner_team=owner)
    page = techdocs_selectors.page_for(entity, path)
    if page is None:
        raise FeedbackError(NOT_FOUND, status=404, field="path")
    url = docs_url(entity, path)
    return Target(kind=kind, key=target_key(kind, entity.ref, path), label=f"{entity.display_name} docs: {page.title}"[:300],
                  url=url, entity=entity, docs_path=path, owner_team=owner)


def _run_target(user, target: str) -> Target:
    try:
        uid = uuid.UUID(target)
    except ValueError:
        raise FeedbackError(NOT_FOUND, status=404, field="target") from None
    run = scaffolder_selectors.run_for(user, uid)
    # Feedback on a run is about its template, so only for whoever may see the template now: a run of a
    # template the poster may not see (another team's private one, made private later, or their team's run
    # of a template they were never shown) answers as a missing run does, as does one whose template is
    # gone. Accepted, its title would be in the stored label and its owner team in the answer; the run page
    # does not offer the form either.
    template = None if run is None else (
        scaffolder_selectors.templates_for(user).select_related("owner_team").filter(ref=run.template_ref).first())
    if template is None:
        raise FeedbackError(NOT_FOUND, status=404, field="target")
    owner = template.owner_team or platform_team()
    label = f"{run.template_title or run.template_ref} (run {str(run.uid)[:8]})"
    return Target(kind=TargetKind.TEMPLATE, key=target_key(TargetKind.TEMPLATE, str(run.uid)), label=label[:300], url=run.get_absolute_url(),
                  entity=template, run=run, owner_team=owner)


def clean_text(value: Any, *, field: str, label: str, limit: int) -> str:
    text = value if isinstance(value, str) else ""
    text = text.replace("\r\n", "\n").strip()
    if len(text) > limit:
        raise FeedbackError(f"{label} is {len(text):,} characters long; at most {limit:,} are accepted.",
                            field=field)
    return text


def _notify(item: FeedbackItem, event: str, seq: int, status: str = "") -> None:
    """Queued with the status it announces: delivered later, the message still says what changed then."""
    outbox.enqueue(None, f"feedback:{item.pk}:{event}:{seq}", "portal.feedback.tasks.notify",
                   [item.pk, event, seq, status])


@transaction.atomic
def feedback_give(*, actor, kind: str, target: str = "", path: str = "", useful: bool | None = None,
                  comment: str = "", title: str = "", client_key: str = "") -> tuple[FeedbackItem, bool]:
    """Store the actor's feedback: one row per user per page, entity or run (giving it again changes the
    answer and comment), any number of ideas about the portal (a form submitted twice — same
    `client_key` — is one). Returns (item, created). The owning team hears of it once it asks for
    something (a comment, or an idea)."""
    resolved = resolve_target(actor, kind=kind, target=target, path=path)
    comment = clean_text(comment, field="comment", label="The comment", limit=conf.get("MAX_COMMENT_CHARS"))
    title = clean_text(title, field="title", label="The title", limit=conf.get("MAX_TITLE_CHARS"))
    client_key = (client_key or "").strip()[:64]
    if kind == TargetKind.PLATFORM:
        if not title:
            raise FeedbackError("Give your idea a title: one line saying what you would like.", field="title")
        useful = None
    elif useful is None:
        raise FeedbackError("Answer yes or no: was this useful?", field="useful")
    fields = {"kind": kind, "target_label": resolved.label, "entity": resolved.entity, "docs_path": resolved.docs_path,
              "run": resolved.run, "owner_team": resolved.owner_team, "useful": useful, "title": title,
              "comment": comment}
    lookup = ({"author": actor, "target_key": resolved.key} if resolved.key else
              {"author": actor, "client_key": client_key} if client_key else None)
    item = FeedbackItem.objects.select_for_update().filter(**lookup).first() if lookup else None
    created = item is None
    if created:
        try:
            with transaction.atomic():
                item = FeedbackItem.objects.create(author=actor, target_key=resolved.key, client_key=client_key,
                                                   **fields)
        except IntegrityError:  # the same answer racing itself (a double click): the first one stands
            item = FeedbackItem.objects.select_for_update().get(**lookup)
            created = False
    asked_before = not created and item.is_request
    if not created and resolved.key:  # a changed answer; a resubmitted idea form changes nothing
        for name in ("useful", "comment", "title"):
            setattr(item, name, fields[name])
        item.save(update_fields=["useful", "comment", "title", "updated_at"])
    if item.is_request and not asked_before:
        _notify(item, "new", 0)
    analytics.feedback_given(item, created=created)
    return item, created


def get_visible(user, pk: int) -> FeedbackItem:
    from . import selectors

    item = selectors.visible_items(user).filter(pk=pk).first()
    if item is None:
        raise FeedbackError("No such feedback item.", status=404)
    return item


@transaction.atomic
def feedback_answer(*, actor, item_id: int, status: str, answer: str | None = None,
                    remote_addr: str | None = None) -> FeedbackItem:
    """The owning team's status (open, planned, done, declined) and answer. The author is told of each
    change. Refused: an item the actor may not see (404), a non-owner (403), an unknown status (400)."""
    item = get_visible(actor, item_id)
    if not permissions.may_answer_feedback(actor, item):
        raise FeedbackError("Only maintainers and admins of the owning team answer this feedback.", status=403)
    if status not in Status.values:
        raise FeedbackError(f"Unknown status '{str(status)[:40]}'; use one of: {', '.join(Status.values)}.",
                            field="status")
    item = FeedbackItem.objects.select_for_update().get(pk=item.pk)
    text = item.answer if answer is None else clean_text(
        answer, field="answer", label="The answer", limit=conf.get("MAX_COMMENT_CHARS"))
    if (item.status, item.answer) == (status, text):
        return item
    before = {"status": item.status, "answer": item.answer}
    item.status, item.answer = status, text
    item.answered_by, item.answered_at = actor, timezone.now()
    item.version += 1
    item.save(update_fields=["status", "answer", "answered_by", "answered_at", "version", "updated_at"])
    audit_record(actor=actor, action="feedback.answer", target=f"feedback:{item.pk}", before=before,
                 after={"status": status, "answer": text}, remote_addr=remote_addr)
    if item.author_id != actor.pk:
        _notify(item, "answered", item.version, status)
    return item


@transaction.atomic
def feedback_vote(*, actor, item_id: int, voted: bool | None = None) -> tuple[FeedbackItem, bool]:
    """Vote for an item (`voted` None: toggle). One vote per person (also a unique constraint); its author
    does not vote; done and declined items take no new votes. Returns (item, whether the actor now
    votes for it)."""
    item = get_visible(actor, item_id)
    if not permissions.may_vote_feedback(actor, item):
        raise FeedbackError("You asked for this yourself: your teams already count as asking.", status=403)
    existing = Vote.objects.filter(item=item, user=actor)
    has = existing.exists()
    want = (not has) if voted is None else voted
    if want and not has:
        if item.status not in OPEN_STATUSES:
            raise FeedbackError(f"This item is {item.get_status_display().lower()}; it takes no more votes.",
                                status=409)
        try:
            with transaction.atomic():
                Vote.objects.create(item=item, user=actor)
        except IntegrityError:  # a double click: the first vote stands
            pass
    elif not want and has:
        existing.delete()
    return item, want
