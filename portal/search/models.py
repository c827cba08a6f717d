"""Search storage: one row per indexed document (any source), its tags, the vocabulary used for
spelling correction, and the query log behind search analytics.

The full-text structures themselves are backend-specific and live beside these tables: an FTS5
virtual table `search_fts` on SQLite, a generated `tsv` column with GIN indexes on PostgreSQL
(see the migrations and `backends/`)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from portal.core.fields import RowIdAutoField


class SearchDocument(models.Model):
    """What one indexed thing looks like to search: text to match plus the columns that filter,
    facet and permission-check inside the same query."""

    id = RowIdAutoField(primary_key=True)  # bulk-written (index.py): no AUTOINCREMENT bookkeeping
    source = models.CharField(max_length=40)  # registry name: "catalog", later "docs", "templates"
    key = models.CharField(max_length=250, unique=True)  # stable id within the portal, e.g. "model:default/x"
    kind = models.CharField(max_length=40)  # lowercased kind key: "model", "featureset", "doc"
    kind_label = models.CharField(max_length=40)  # as displayed: "Model"
    name = models.CharField(max_length=200)  # lowercased name, compared for exact/prefix ranking
    title = models.CharField(max_length=300, blank=True)
    description = models.TextField(blank=True)
    body = models.TextField(blank=True)  # kind-specific text: feature names, columns, metric names…
    owner = models.CharField(max_length=200, blank=True)  # short owner name ("fraud-ml")
    lifecycle = models.CharField(max_length=100, blank=True)
    type = models.CharField(max_length=100, blank=True)
    tags = models.CharField(max_length=1000, blank=True)  # space-separated, for display and matching
    visibility = models.CharField(max_length=10, default="internal")
    owner_team_id = models.IntegerField(
        null=True, blank=True
    )  # accounts.Team id; no FK: search owns no rules
    url = models.CharField(max_length=500)
    # Ranking (see portal/search/scoring.py): each field's words (name, title, tags, owner, description,
    # body) between spaces, the static quality factor, the popularity share from clicked results.
    ev_n = models.TextField(blank=True, default=" ")
    ev_t = models.TextField(blank=True, default=" ")
    ev_g = models.TextField(blank=True, default=" ")
    ev_o = models.TextField(blank=True, default=" ")
    ev_d = models.TextField(blank=True, default=" ")
    ev_b = models.TextField(blank=True, default=" ")
    quality = models.FloatField(default=1.0)
    popularity = models.FloatField(default=0.0)
    # When this document was written (every write path sets it; NULL: unknown): a source's repair
    # sweep re-indexes objects changed since (SearchSource.unindexed; the catalog compares it with
    # Entity.updated_at). Nullable so that adding it is an ALTER TABLE on SQLite, not a table rebuild
    # (which would drop the full-text and version triggers).
    indexed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["kind"], name="searchdoc_kind"),
            models.Index(fields=["name"], name="searchdoc_name"),
            models.Index(fields=["owner"], name="searchdoc_owner"),
            models.Index(fields=["visibility", "owner_team_id"], name="searchdoc_visibility"),
            models.Index(fields=["source"], name="searchdoc_source"),
            # The few popular documents (index.refresh_popularity reads them without a table scan).
            models.Index(fields=["key"], condition=models.Q(popularity__gt=0), name="searchdoc_popular"),
        ]

    def __str__(self) -> str:
        return self.key


class SearchDocumentTag(models.Model):
    id = RowIdAutoField(primary_key=True)
    document = models.ForeignKey(SearchDocument, on_delete=models.CASCADE, related_name="tag_rows",
                                 db_index=False)  # searchtag_doc below
    tag = models.CharField(max_length=63)

    class Meta:
        indexes = [
            models.Index(fields=["tag", "document"], name="searchtag_tag_doc"),
            models.Index(fields=["document"], name="searchtag_doc"),
        ]

    def __str__(self) -> str:
        return self.tag


class SearchTerm(models.Model):
    """The index vocabulary (words of names, titles, tags, descriptions), for "did you mean"."""

    term = models.CharField(max_length=40, primary_key=True)

    def __str__(self) -> str:
        return self.term


class SearchQuery(models.Model):
    """One search as the user ran it; `clicked_key` is set by the click-through redirect."""

    class Via(models.TextChoices):
        PAGE = "page", "Results page"
        TYPEAHEAD = "typeahead", "Typeahead"
        API = "api", "API"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    text = models.CharField(max_length=500)
    normalized = models.CharField(max_length=500, db_index=True)  # lowercased, whitespace collapsed
    via = models.CharField(max_length=10, choices=Via.choices, default=Via.PAGE)
    result_count = models.PositiveIntegerField(default=0)
    latency_ms = models.FloatField(default=0)
    clicked_key = models.CharField(max_length=250, blank=True)
    clicked_position = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "search queries"

    def __str__(self) -> str:
        return self.text


class SearchIndexVersion(models.Model):
    """One row whose `version` changes (to a new random value) in the same transaction as any write
    to the index tables — documents, tags, vocabulary. On SQLite, database triggers (migration 0004)
    do it for every written row, whatever code path writes; the backend's own bulk writes set `bulk`
    meanwhile, which the triggers skip, and change the version once at the end. Search results are
    cached per version (never while `bulk` is set); a random value, not a counter, is never reused
    after a rolled-back write."""

    version = models.BigIntegerField(default=0)
    bulk = models.BooleanField(default=False)

    def __str__(self) -> str:
        return str(self.version)
