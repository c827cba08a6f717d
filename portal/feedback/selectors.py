"""Reads of the feedback app, always filtered by `permissions.visible_feedback_q`; the roadmap's score
(votes and the asking teams' active users) in a fixed number of queries, whatever the number of items."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from portal.accounts import permissions
from portal.accounts.models import Membership, Team
from portal.insights.models import ActiveUserDay

from . import conf
from .models import OPEN_STATUSES, FeedbackItem, Status, TargetKind, Vote


def visible_items(user) -> QuerySet[FeedbackItem]:
    return FeedbackItem.objects.filter(permissions.visible_feedback_q(user))


def listed(qs: QuerySet[FeedbackItem]) -> QuerySet[FeedbackItem]:
    return qs.select_related("owner_team", "author").annotate(vote_count=Count("votes"))


def item_detail(user, pk: int) -> FeedbackItem | None:
    return listed(visible_items(user)).select_related("answered_by", "entity", "run").filter(pk=pk).first()


def mine(user, limit: int = 100) -> list[FeedbackItem]:
    return list(listed(visible_items(user).filter(author=user)).order_by("-updated_at", "-id")[:limit])


def for_my_teams(user, teams: list[int] | None, limit: int = 100) -> list[FeedbackItem]:
    """Feedback owned by `teams` (those the user answers for, `permissions.feedback_answer_team_ids`;
    None: every team's), asks first."""
    qs = visible_items(user).filter(Q(kind=TargetKind.PLATFORM) | ~Q(comment=""))
    qs = qs if teams is None else qs.filter(owner_team_id__in=teams)
    return list(listed(qs).order_by("status", "-created_at", "-id")[:limit])


def useful_tally(user, teams: list[int] | None, limit: int = 20) -> list[dict]:
    """Per page/entity/run `teams` own: how many said useful and not useful (bare answers count)."""
    qs = visible_items(user).exclude(useful__isnull=True)
    qs = qs if teams is None else qs.filter(owner_team_id__in=teams)
    return list(qs.values("target_key", "target_label").annotate(
        yes=Count("id", filter=Q(useful=True)), no=Count("id", filter=Q(useful=False)), total=Count("id"),
    ).order_by("-total", "target_label")[:limit])


def my_answer(user, key: str) -> FeedbackItem | None:
    if not key or not (user and user.is_authenticated):
        return None
    return FeedbackItem.objects.filter(author=user, target_key=key).first()


def voted_ids(user, item_ids) -> set[int]:
    return set(Vote.objects.filter(user=user, item_id__in=list(item_ids)).values_list("item_id", flat=True))


def answerers(item: FeedbackItem) -> list:
    """Who hears of new feedback: the owning team's maintainers and admins; no team: platform admins.
    Never the author (they know)."""
    User = get_user_model()
    if item.owner_team_id is not None:
        members = Membership.objects.filter(team_id=item.owner_team_id,
                                            role__in=permissions.FEEDBACK_ANSWER_ROLES).values("user_id")
        qs = User.objects.filter(pk__in=members)
    else:
        qs = User.objects.filter(is_superuser=True)
    return list(qs.filter(is_active=True).exclude(pk=item.author_id).order_by("pk"))


# -- the roadmap -------------------------------------------------------------------------------


@dataclass
class RoadmapRow:
    item: FeedbackItem
    votes: int
    asking_teams: list[str] = field(default_factory=list)
    active_users: int = 0
    score: int = 0
    voted: bool = False
    rank: int = 0


def roadmap(user, *, status: str = "", kind: str = "") -> list[RoadmapRow]:
    """Open and planned requests (ideas, and answers with a comment) ranked by score = votes × VOTE_WEIGHT
    + the distinct active users (ACTIVE_DAYS) of the asking teams — the teams of the author and of every
    voter. Six queries, whatever the number of items."""
    statuses = [status] if status in OPEN_STATUSES else list(OPEN_STATUSES)
    qs = _on_roadmap(visible_items(user).filter(status__in=statuses))
    if kind in TargetKind.values:
        qs = qs.filter(kind=kind)
    items = list(listed(qs).order_by("-vote_count", "-created_at", "-id")[: conf.get("ROADMAP_LIMIT")])
    rows = _scored(user, items)
    rows.sort(key=lambda r: (-r.score, -r.votes, -r.item.created_at.timestamp(), -r.item.pk))
    for rank, row in enumerate(rows, 1):
        row.rank = rank
    return rows


def roadmap_row(user, pk: int) -> RoadmapRow | None:
    """One item's roadmap row (votes, asking teams, score), as the roadmap computes it, whatever its status
    (a vote on the page answers with the row's new figures); None when it is not a roadmap request
    the user may see. Six queries at most."""
    items = list(listed(_on_roadmap(visible_items(user))).filter(pk=pk))
    rows = _scored(user, items)
    return rows[0] if rows else None


def _on_roadmap(qs: QuerySet[FeedbackItem]) -> QuerySet[FeedbackItem]:
    """Requests: ideas about the platform, and answers with a comment (a bare "useful" click is not one)."""
    return qs.filter(Q(kind=TargetKind.PLATFORM) | ~Q(comment=""))


def _scored(user, items: list[FeedbackItem]) -> list[RoadmapRow]:
    """The rows of `items` (annotated with `vote_count`), unranked, in their order; five queries."""
    if not items:
        return []
    ids = [i.pk for i in items]
    askers: dict[int, set[int]] = {i.pk: {i.author_id} for i in items}
    for item_id, user_id in Vote.objects.filter(item_id__in=ids).values_list("item_id", "user_id"):
        askers[item_id].add(user_id)
    people = set().union(*askers.values())
    teams_of: dict[int, set[int]] = defaultdict(set)
    for user_id, team_id in Membership.objects.filter(user_id__in=people).values_list("user_id", "team_id"):
        teams_of[user_id].add(team_id)
    item_teams = {pk: set().union(*(teams_of[u] for u in users)) for pk, users in askers.items()}
    all_teams = set().union(*item_teams.values())
    since = timezone.now().date() - timedelta(days=int(conf.get("ACTIVE_DAYS")))
    active_in: dict[int, set[int]] = defaultdict(set)
    if all_teams:
        active = ActiveUserDay.objects.filter(day__gte=since).values("user_id")
        for team_id, user_id in Membership.objects.filter(team_id__in=all_teams, user_id__in=active) \
                .values_list("team_id", "user_id").distinct():
            active_in[team_id].add(user_id)
    names = dict(Team.objects.filter(pk__in=all_teams).values_list("pk", "name")) if all_teams else {}
    mine = voted_ids(user, ids)
    weight = int(conf.get("VOTE_WEIGHT"))
    rows = []
    for item in items:
        teams = item_teams[item.pk]
        reach = len(set().union(*(active_in[t] for t in teams))) if teams else 0
        rows.append(RoadmapRow(item=item, votes=item.vote_count, asking_teams=sorted(names[t] for t in teams),
                               active_users=reach, score=item.vote_count * weight + reach, voted=item.pk in mine))
    return rows


STATUS_CHOICES = Status.choices
