"""The shapes the incidents API answers with, as the OpenAPI schema documents them (never used to
serialise: `api.py` builds its bodies itself), and the request bodies it reads."""

from __future__ import annotations

from rest_framework import serializers

from portal.core.api import PageInfoSerializer

from .models import AlertStatus, EntryKind, Severity, Source, Status


class PostmortemSerializer(serializers.Serializer):
    url = serializers.CharField(help_text="The docs page in the portal.")
    title = serializers.CharField()
    entity = serializers.CharField(help_text="The entity whose docs hold the page.")
    path = serializers.CharField(allow_blank=True)


class IncidentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.CharField(help_text="The incident's page in the portal.")
    title = serializers.CharField()
    summary = serializers.CharField(allow_blank=True)
    severity = serializers.ChoiceField(choices=Severity.choices, help_text="sev1 (critical) … sev4 (low).")
    status = serializers.ChoiceField(choices=Status.choices)
    source = serializers.ChoiceField(choices=Source.choices)
    team = serializers.CharField(allow_null=True, help_text="The owning team (null: platform admins respond).")
    entities = serializers.ListField(child=serializers.CharField(),
                                     help_text="Linked entities you may see, the first gave the owning team.")
    dedupKey = serializers.CharField(allow_blank=True)
    openedAt = serializers.DateTimeField()
    openedBy = serializers.CharField()
    acknowledgedAt = serializers.DateTimeField(allow_null=True)
    resolvedAt = serializers.DateTimeField(allow_null=True)
    mttaSeconds = serializers.FloatField(allow_null=True, help_text="Opened → first acknowledgement.")
    mttrSeconds = serializers.FloatField(allow_null=True, help_text="Opened → resolution (null while unresolved).")
    postmortem = PostmortemSerializer(allow_null=True, help_text="Null when none is linked, or when its page "
                                      "belongs to an entity you may not see (`postmortemHidden` true).")
    postmortemHidden = serializers.BooleanField()
    externalURL = serializers.CharField(allow_blank=True, help_text="Alertmanager's, for incidents it opened.")
    createdAt = serializers.DateTimeField()
    updatedAt = serializers.DateTimeField()


class TimelineEntrySerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    kind = serializers.ChoiceField(choices=EntryKind.choices)
    actor = serializers.CharField(help_text="A user name, `alertmanager` or `plinth` (the system).")
    text = serializers.CharField(allow_blank=True)


class AlertSerializer(serializers.Serializer):
    fingerprint = serializers.CharField()
    name = serializers.CharField(allow_blank=True)
    status = serializers.ChoiceField(choices=AlertStatus.choices)
    severity = serializers.ChoiceField(choices=Severity.choices)
    labels = serializers.DictField(child=serializers.CharField(), help_text="Empty when `entityHidden`.")
    annotations = serializers.DictField(child=serializers.CharField(), help_text="Empty when `entityHidden`.")
    entity = serializers.CharField(allow_blank=True, allow_null=True,
                                   help_text="The plinth_entity label, as sent; null when `entityHidden`.")
    entityHidden = serializers.BooleanField(
        help_text="The label names no entity you may see (another team's private one, or none in the catalog): "
        "its labels, annotations and generator URL are left out.")
    startsAt = serializers.DateTimeField()
    endsAt = serializers.DateTimeField(allow_null=True)
    generatorURL = serializers.CharField(allow_blank=True)


class IncidentDetailSerializer(IncidentSerializer):
    timeline = TimelineEntrySerializer(many=True)
    alerts = AlertSerializer(many=True)


class IncidentPageSerializer(serializers.Serializer):
    items = IncidentSerializer(many=True)
    pageInfo = PageInfoSerializer()


class IncidentCreateSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=200)
    severity = serializers.ChoiceField(choices=Severity.choices)
    entities = serializers.ListField(child=serializers.CharField(max_length=200), required=False, default=list,
                                     max_length=20, help_text="Entity references; the first gives the owning team.")
    team = serializers.CharField(required=False, allow_blank=True, default="", max_length=63,
                                 help_text="The owning team instead (a team where you may edit).")
    summary = serializers.CharField(required=False, allow_blank=True, default="", max_length=10000)
    dedupKey = serializers.CharField(required=False, allow_blank=True, default="", max_length=200,
                                     help_text="While an incident with this key is unresolved, it is answered (200) "
                                     "instead of opening another.")


class IncidentStatusSerializer(serializers.Serializer):
    status = serializers.CharField(max_length=20, help_text="acknowledged, resolved, or open (reopen a resolved one).")
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=10000, trim_whitespace=False)


class IncidentNoteSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=10000, trim_whitespace=False)


class IncidentPostmortemSerializer(serializers.Serializer):
    url = serializers.CharField(allow_blank=True, max_length=1000,
                                help_text="A docs page of the portal (/docs/<kind>/<namespace>/<name>/<path>); "
                                "'' removes the link.")


class AlertmanagerResultSerializer(serializers.Serializer):
    incident = IncidentSerializer(allow_null=True)
    created = serializers.BooleanField(help_text="This notification opened the incident.")
    resolved = serializers.BooleanField(help_text="This notification resolved it (every alert resolved).")
    alerts = serializers.DictField(child=serializers.IntegerField(), help_text="received, new, changed, unchanged.")
    unlinked = serializers.ListField(child=serializers.CharField(),
                                     help_text="plinth_entity values naming no entity the token may see.")
    note = serializers.CharField(allow_blank=True, help_text="Why nothing was opened, when nothing was.")


class AlertmanagerAlertSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=AlertStatus.choices)
    labels = serializers.DictField(child=serializers.CharField(), help_text="plinth_entity names the entity; "
                                   "severity sets the incident's severity; others are kept, not interpreted.")
    annotations = serializers.DictField(child=serializers.CharField(), required=False)
    startsAt = serializers.DateTimeField()
    endsAt = serializers.DateTimeField(required=False)
    generatorURL = serializers.CharField(required=False, allow_blank=True)
    fingerprint = serializers.CharField(required=False)


class AlertmanagerPayloadSerializer(serializers.Serializer):
    version = serializers.ChoiceField(choices=["4"])
    groupKey = serializers.CharField()
    status = serializers.ChoiceField(choices=AlertStatus.choices)
    receiver = serializers.CharField(required=False, allow_blank=True)
    truncatedAlerts = serializers.IntegerField(required=False, min_value=0)
    groupLabels = serializers.DictField(child=serializers.CharField(), required=False)
    commonLabels = serializers.DictField(child=serializers.CharField(), required=False)
    commonAnnotations = serializers.DictField(child=serializers.CharField(), required=False)
    externalURL = serializers.CharField(required=False, allow_blank=True)
    alerts = AlertmanagerAlertSerializer(many=True, help_text="1 to PLINTH_INCIDENTS_MAX_ALERTS (default 1,000); "
                                         "more answers 413.")
