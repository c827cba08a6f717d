"""Feedback REST API: list and give feedback, vote, set the status and answer, read the roadmap."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from portal.core import pagination
from portal.core.api import PageInfoSerializer, error_responses
from portal.core.client_address import client_address
from portal.core.limits import COMMENT, FORM, body_limit

from . import selectors, services
from .models import OPEN_STATUSES, FeedbackItem, Status, TargetKind
from .rendering import render_comment

MAX_LIMIT = 500
TRUE = {"1", "true", "yes"}


class TextField(serializers.CharField):
    """A CharField that takes text only: DRF's would store the number 7 as "7"."""

    default_error_messages = {"not_text": "Must be text (a string), not {type}."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_text", type=type(data).__name__)
        return super().to_internal_value(data)


def _error(exc: services.FeedbackError) -> Response:
    body = {"status": exc.status, "message": exc.message}
    if exc.field:
        body["details"] = {exc.field: [exc.message]}
    return Response({"error": body}, status=exc.status)


def item_dict(item: FeedbackItem) -> dict:
    votes = getattr(item, "vote_count", None)
    return {
        "id": item.pk,
        "url": item.get_absolute_url(),
        "kind": item.kind,
        "target": item.target_key,
        "targetLabel": item.target_label,
        "docsPath": item.docs_path,
        "ownerTeam": item.owner_team.name if item.owner_team_id else None,
        "author": item.author.get_username(),
        "useful": item.useful,
        "title": item.title,
        "comment": item.comment,
        "commentHtml": str(render_comment(item.comment)),
        "status": item.status,
        "answer": item.answer,
        "answerHtml": str(render_comment(item.answer)),
        "answeredAt": item.answered_at.isoformat() if item.answered_at else None,
        "votes": item.votes.count() if votes is None else votes,
        "createdAt": item.created_at.isoformat(),
        "updatedAt": item.updated_at.isoformat(),
    }


class FeedbackItemSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.CharField(help_text="The item's page in the portal.")
    kind = serializers.ChoiceField(choices=TargetKind.choices)
    target = serializers.CharField(allow_blank=True, help_text="`entity:<ref>`, `docs:<ref>#<path>`, `run:<uid>`; "
                                                               "empty for feedback about the portal.")
    targetLabel = serializers.CharField()
    docsPath = serializers.CharField(allow_blank=True)
    ownerTeam = serializers.CharField(allow_null=True, help_text="The team that answers it.")
    author = serializers.CharField()
    useful = serializers.BooleanField(allow_null=True, help_text="Null for ideas about the portal.")
    title = serializers.CharField(allow_blank=True)
    comment = serializers.CharField(allow_blank=True, help_text="Markdown, as written.")
    commentHtml = serializers.CharField(allow_blank=True, help_text="The comment rendered and sanitised.")
    status = serializers.ChoiceField(choices=Status.choices)
    answer = serializers.CharField(allow_blank=True)
    answerHtml = serializers.CharField(allow_blank=True)
    answeredAt = serializers.DateTimeField(allow_null=True)
    votes = serializers.IntegerField()
    createdAt = serializers.DateTimeField()
    updatedAt = serializers.DateTimeField()


class FeedbackPageSerializer(serializers.Serializer):
    items = FeedbackItemSerializer(many=True)
    totalItems = serializers.IntegerField()
    pageInfo = PageInfoSerializer()


class RoadmapRowSerializer(serializers.Serializer):
    rank = serializers.IntegerField()
    item = FeedbackItemSerializer()
    votes = serializers.IntegerField()
    askingTeams = serializers.ListField(child=serializers.CharField(), help_text="Teams of the author and voters.")
    activeUsers = serializers.IntegerField(help_text="Distinct active users of the asking teams (last 30 days).")
    score = serializers.IntegerField(help_text="votes × voteWeight + activeUsers.")
    voted = serializers.BooleanField(help_text="Whether the caller votes for it.")


class RoadmapSerializer(serializers.Serializer):
    items = RoadmapRowSerializer(many=True)
    voteWeight = serializers.IntegerField()
    activeDays = serializers.IntegerField()


class FeedbackCreateSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=TargetKind.choices)
    target = serializers.CharField(required=False, allow_blank=True, default="", max_length=300,
                                   help_text="entity/docs: the entity reference; template: the run's id; platform: empty.")
    path = serializers.CharField(required=False, allow_blank=True, default="", max_length=500,
                                 help_text="docs: the page's path ('' is the index).")
    useful = serializers.BooleanField(required=False, allow_null=True, default=None,
                                      help_text="Required except for platform feedback.")
    title = TextField(required=False, allow_blank=True, default="", trim_whitespace=False,
                                  help_text="Required for platform feedback (at most 200 characters).")
    comment = TextField(required=False, allow_blank=True, default="", trim_whitespace=False,
                        help_text="Markdown, at most 4,000 characters.")
    clientKey = serializers.CharField(required=False, allow_blank=True, default="", max_length=64,
                                      help_text="Platform feedback: the same key sent twice stores one item.")


class FeedbackStatusSerializer(serializers.Serializer):
    status = serializers.CharField(max_length=20, help_text=f"One of: {', '.join(Status.values)}.")
    answer = TextField(required=False, allow_blank=True, allow_null=True, default=None,
                       trim_whitespace=False, help_text="Markdown; omitted: the answer is kept.")


class FeedbackVoteSerializer(serializers.Serializer):
    voted = serializers.BooleanField(required=False, allow_null=True, default=None,
                                     help_text="true: vote, false: withdraw; omitted: toggle.")


class FeedbackVoteResultSerializer(serializers.Serializer):
    voted = serializers.BooleanField()
    item = FeedbackItemSerializer()


@extend_schema(
    methods=["GET"], operation_id="feedback_list", tags=["feedback"],
    summary="Feedback items you may see",
    description="Newest first. Feedback on an entity follows the entity's visibility; your own is always listed.",
    parameters=[
        OpenApiParameter("status", OpenApiTypes.STR, description=f"One of: {', '.join(Status.values)}"),
        OpenApiParameter("kind", OpenApiTypes.STR, description=f"One of: {', '.join(TargetKind.values)}"),
        OpenApiParameter("mine", OpenApiTypes.BOOL, description="Only your own feedback"),
        OpenApiParameter("team", OpenApiTypes.STR, description="Only items owned by this team (its name)"),
        OpenApiParameter("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                         description=f"Page size, 1–{MAX_LIMIT} (default 100)"),
        OpenApiParameter("cursor", OpenApiTypes.STR, description="`pageInfo.nextCursor` of the previous page"),
    ],
    responses={200: FeedbackPageSerializer, **error_responses()},
)
@extend_schema(
    methods=["POST"], operation_id="feedback_create", tags=["feedback"],
    summary="Give feedback",
    description="\"Was this useful?\" on an entity, a docs page or a template run (one answer per person and "
    "target: giving it again changes it, 200), or an idea for the portal (201). A target you may not see "
    "answers 404 like a missing one.",
    request=FeedbackCreateSerializer,
    responses={201: FeedbackItemSerializer, 200: OpenApiResponse(FeedbackItemSerializer, description="Your earlier answer, changed."),
               **error_responses(404)},
    examples=[OpenApiExample("Docs page", request_only=True,
                             value={"kind": "docs", "target": "component:default/plinth", "path": "guide/",
                                    "useful": False, "comment": "The *register* step misses the token scope."})],
)
@body_limit(COMMENT)
@api_view(["GET", "HEAD", "POST"])
def items(request):
    if request.method == "POST":
        body = FeedbackCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        try:
            item, created = services.feedback_give(
                actor=request.user, kind=data["kind"], target=data["target"], path=data["path"],
                useful=data["useful"], title=data["title"], comment=data["comment"], client_key=data["clientKey"])
        except services.FeedbackError as exc:
            return _error(exc)
        item = selectors.item_detail(request.user, item.pk)
        return Response(item_dict(item), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)
    params = request.query_params
    problems = {}
    if params.get("status") and params["status"] not in Status.values:
        problems["status"] = [f"Unknown status; use one of: {', '.join(Status.values)}."]
    if params.get("kind") and params["kind"] not in TargetKind.values:
        problems["kind"] = [f"Unknown kind; use one of: {', '.join(TargetKind.values)}."]
    if problems:
        raise ValidationError(problems)
    limit = pagination.page_size(params, default=100, maximum=MAX_LIMIT)
    qs = selectors.visible_items(request.user)
    if params.get("status"):
        qs = qs.filter(status=params["status"])
    if params.get("kind"):
        qs = qs.filter(kind=params["kind"])
    if params.get("mine", "").lower() in TRUE:
        qs = qs.filter(author=request.user)
    if params.get("team"):
        qs = qs.filter(owner_team__name=params["team"].strip().lower()[:63])
    total = qs.count()
    qs = selectors.listed(qs).order_by("-created_at", "-id")
    rows, cursor = pagination.newest_first(qs, params, limit)
    return Response({"items": [item_dict(r) for r in rows], "totalItems": total, "pageInfo": {"nextCursor": cursor}})


@extend_schema(operation_id="feedback_read", tags=["feedback"], summary="One feedback item",
               responses={200: FeedbackItemSerializer, **error_responses(404)})
@api_view(["GET", "HEAD"])
def item(request, pk: int):
    row = selectors.item_detail(request.user, pk)
    if row is None:
        return _error(services.FeedbackError("No such feedback item.", status=404))
    return Response(item_dict(row))


@extend_schema(
    operation_id="feedback_set_status", tags=["feedback"], summary="Set the status and answer (owning team)",
    description="Maintainers and admins of the owning team (and platform admins) set open, planned, done or "
    "declined, with an answer the author sees (and is notified of).",
    request=FeedbackStatusSerializer, responses={200: FeedbackItemSerializer, **error_responses(403, 404)},
    examples=[OpenApiExample("Planned", request_only=True,
                             value={"status": "planned", "answer": "Next sprint: the guide gets the scope."})],
)
@body_limit(COMMENT)
@api_view(["POST"])
def set_status(request, pk: int):
    body = FeedbackStatusSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    try:
        services.feedback_answer(actor=request.user, item_id=pk, status=body.validated_data["status"],
                                 answer=body.validated_data["answer"], remote_addr=client_address(request))
    except services.FeedbackError as exc:
        return _error(exc)
    return Response(item_dict(selectors.item_detail(request.user, pk)))


@extend_schema(
    operation_id="feedback_vote", tags=["feedback"], summary="Vote for a feedback item",
    description="One vote per person; not on your own item (403); done and declined items take no new votes (409).",
    request=FeedbackVoteSerializer, responses={200: FeedbackVoteResultSerializer, **error_responses(403, 404, 409)},
)
@body_limit(FORM)
@api_view(["POST"])
def vote(request, pk: int):
    body = FeedbackVoteSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    try:
        _, voted = services.feedback_vote(actor=request.user, item_id=pk, voted=body.validated_data["voted"])
    except services.FeedbackError as exc:
        return _error(exc)
    return Response({"voted": voted, "item": item_dict(selectors.item_detail(request.user, pk))})


@extend_schema(
    operation_id="feedback_roadmap", tags=["feedback"], summary="The roadmap: open and planned requests, ranked",
    description="score = votes × voteWeight + distinct active users (last activeDays days) of the asking teams.",
    parameters=[OpenApiParameter("status", OpenApiTypes.STR, description="open or planned (default: both)"),
                OpenApiParameter("kind", OpenApiTypes.STR, description=f"One of: {', '.join(TargetKind.values)}")],
    responses={200: RoadmapSerializer, **error_responses()},
)
@api_view(["GET", "HEAD"])
def roadmap(request):
    from . import conf

    wanted_status, wanted_kind = request.query_params.get("status", ""), request.query_params.get("kind", "")
    problems = {}
    if wanted_status and wanted_status not in OPEN_STATUSES:
        problems["status"] = ["The roadmap shows open or planned items."]
    if wanted_kind and wanted_kind not in TargetKind.values:
        problems["kind"] = [f"Unknown kind; use one of: {', '.join(TargetKind.values)}."]
    if problems:
        raise ValidationError(problems)
    rows = selectors.roadmap(request.user, status=wanted_status, kind=wanted_kind)
    return Response({
        "items": [{"rank": r.rank, "item": item_dict(r.item), "votes": r.votes, "askingTeams": r.asking_teams,
                   "activeUsers": r.active_users, "score": r.score, "voted": r.voted} for r in rows],
        "voteWeight": int(conf.get("VOTE_WEIGHT")), "activeDays": int(conf.get("ACTIVE_DAYS")),
    })
