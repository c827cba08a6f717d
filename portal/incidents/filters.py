"""One FilterSet drives both the Incidents page and `GET /api/v1/incidents`; built with `request=` (the
`entity` filter reads only the entities the reader may see)."""

from __future__ import annotations

import django_filters

from portal.accounts import permissions

from .models import ACTIVE, Incident, IncidentEntity, Severity, Source, Status

STATUS_CHOICES = [("active", "Open or acknowledged"), *Status.choices]


class IncidentFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=STATUS_CHOICES, method="filter_status")
    severity = django_filters.ChoiceFilter(choices=Severity.choices)
    source = django_filters.ChoiceFilter(choices=Source.choices)
    team = django_filters.CharFilter(method="filter_team", max_length=63)
    entity = django_filters.CharFilter(method="filter_entity", max_length=200)

    class Meta:
        model = Incident
        fields: list[str] = []

    def filter_status(self, qs, name, value):
        return qs.filter(status__in=ACTIVE) if value == "active" else qs.filter(status=value)

    def filter_team(self, qs, name, value):
        return qs.filter(owner_team__name=value.strip().lower())

    def filter_entity(self, qs, name, value):
        from .selectors import ref_key

        key = ref_key(value) or value.strip().lower()
        # Only entities the reader may see: a hidden one matches nothing, exactly like a missing one (the
        # incident itself may be visible, and would otherwise tell that the private entity exists).
        links = IncidentEntity.objects.filter(entity__ref=key)
        user = getattr(self.request, "user", None)  # no request: nobody, deny by default
        return qs.filter(pk__in=permissions.filter_visible(links, user, prefix="entity__").values("incident_id"))
