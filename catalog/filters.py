"""One FilterSet drives both the catalog list page and `GET /api/v1/entities`."""

from __future__ import annotations

import django_filters
from django.db.models import Exists, OuterRef

from portal.accounts import permissions

from .models import Entity, EntityTag, Star

ORDERINGS = {
    "name": ("name_key",), "-name": ("-name_key",),
    "kind": ("kind_key", "name_key"), "-kind": ("-kind_key", "name_key"),
    "updated": ("updated_at", "id"), "-updated": ("-updated_at", "-id"),
    "lifecycle": ("lifecycle", "name_key"), "-lifecycle": ("-lifecycle", "name_key"),
}


COMMON_TAG_SHARE = 0.05
LIST_VALUED = ("kind", "type", "lifecycle", "namespace", "owner", "tag")
MAX_VALUES = 50


class TooManyValues(ValueError):
    def __init__(self, key: str, count: int) -> None:
        super().__init__(f"At most {MAX_VALUES} values, comma-separated (got {count}).")
        self.key = key


def normalized(params):
    """The filter parameters as EntityFilter and the facet counts both read them: a list-valued one given
    twice is its values joined (`kind=model&kind=dataset` is `kind=model,dataset`; for `tag`, both tags),
    where a QueryDict's `get` would keep the last and the counts all. More than MAX_VALUES values of one:
    TooManyValues naming it (the list and the counts must not each cut them their own way)."""
    out = params.copy()
    for key in LIST_VALUED:
        given = params.getlist(key)
        if not given:
            continue
        values = [v.strip() for raw in given for v in raw.split(",") if v.strip()]
        if len(values) > MAX_VALUES:
            raise TooManyValues(key, len(values))
        if len(given) > 1:
            out.setlist(key, [",".join(values)])
    return out


class EntityFilter(django_filters.FilterSet):
    kind = django_filters.CharFilter(method="filter_kind")
    type = django_filters.CharFilter(method="filter_lower", field_name="spec_type")
    lifecycle = django_filters.CharFilter(method="filter_lower", field_name="lifecycle")
    namespace = django_filters.CharFilter(method="filter_lower", field_name="namespace")
    owner = django_filters.CharFilter(method="filter_owner")
    tag = django_filters.CharFilter(method="filter_tag")
    q = django_filters.CharFilter(method="filter_text")
    mine = django_filters.BooleanFilter(method="filter_mine")
    starred = django_filters.BooleanFilter(method="filter_starred")
    orphan = django_filters.BooleanFilter(field_name="orphan")
    has_errors = django_filters.BooleanFilter(method="filter_errors")

    class Meta:
        model = Entity
        fields: list[str] = []

    @staticmethod
    def _values(value: str) -> list[str]:
        return [v.strip().lower() for v in value.split(",") if v.strip()]  # at most MAX_VALUES: `normalized`

    def filter_kind(self, qs, name, value):
        return qs.filter(kind_key__in=self._values(value))

    def filter_lower(self, qs, name, value):
        return qs.filter(**{f"{name}__in": self._values(value)})

    def filter_owner(self, qs, name, value):
        refs = [v if ":" in v else f"group:default/{v}" for v in self._values(value)]
        refs = [r if "/" in r.split(":", 1)[1] else r.replace(":", ":default/", 1) for r in refs]
        return qs.filter(owner_ref__in=refs)

    def filter_tag(self, qs, name, value):
        # A rare tag picks the rows: an IN over the (tag, entity) index. A common one would make
        # that IN a large temporary set; a per-row EXISTS probe lets the page's ordered scan stop
        # after one page of matches instead. The facet cube knows which is which.
        from .facets import tag_share

        for tag in self._values(value):
            if tag_share(tag) > COMMON_TAG_SHARE:
                qs = qs.filter(Exists(EntityTag.objects.filter(entity_id=OuterRef("pk"), tag=tag)))
            else:
                qs = qs.filter(pk__in=EntityTag.objects.filter(tag=tag).values("entity_id"))
        return qs

    def filter_text(self, qs, name, value):
        """Name prefix, as an index range (full-text search is the search service's job)."""
        value = value.strip().lower()[:63]
        if not value:
            return qs
        return qs.filter(name_key__gte=value, name_key__lt=value + "\U0010ffff")

    def filter_mine(self, qs, name, value):
        if not value:
            return qs
        return qs.filter(owner_team_id__in=permissions.team_ids(self.request.user))

    def filter_starred(self, qs, name, value):
        if not value:
            return qs
        return qs.filter(Exists(Star.objects.filter(entity=OuterRef("pk"), user=self.request.user)))

    def filter_errors(self, qs, name, value):
        return qs.filter(error_count__gt=0) if value else qs.filter(error_count=0)
