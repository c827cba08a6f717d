"""Built documentation, stored so that serving a page is one indexed read.

A `DocSite` is the last build of one entity's docs folder (status, errors, navigation); its
`DocPage` rows are the rendered, sanitised pages and `DocAsset` rows the images they reference.
A `ModelCard` is the rendered model card of a Model entity. Rows are replaced by each build.
"""

from __future__ import annotations

from django.db import models
from django.urls import reverse

from catalog.models import Entity


def docs_url(entity: Entity, path: str = "") -> str:
    """The address of an entity's docs: its site's home, or the page at `path`."""
    args = [entity.kind_key, entity.namespace, entity.name]
    return reverse("techdocs:page", args=[*args, path]) if path else reverse("techdocs:site", args=args)


class BuildStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    OK = "ok", "Built"
    PARTIAL = "partial", "Built with errors"
    FAILED = "failed", "Failed"


class DocSite(models.Model):
    entity = models.OneToOneField(Entity, on_delete=models.CASCADE, related_name="techdocs_site")
    status = models.CharField(max_length=10, choices=BuildStatus.choices, default=BuildStatus.PENDING)
    errors = models.JSONField(default=list, blank=True)  # [{"path": "guide/x.md", "message": "..."}]
    source_dir = models.CharField(max_length=2000, blank=True)
    source_hash = models.CharField(max_length=64, blank=True)
    site_name = models.CharField(max_length=300, blank=True)
    nav = models.JSONField(default=list, blank=True)  # [{"title", "path" | "url", "children"}]
    nav_html = models.TextField(blank=True)  # pre-rendered (escaped) sidebar: templates are slow at 1,000 links
    edit_url = models.CharField(max_length=2000, blank=True)  # backstage.io/edit-url
    edit_base = models.CharField(max_length=2000, blank=True)  # mkdocs repo_url + edit_uri
    page_count = models.PositiveIntegerField(default=0)
    built_at = models.DateTimeField(null=True, blank=True)  # last build that produced pages
    attempted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["status"], name="docsite_status")]

    def __str__(self) -> str:
        return f"docs of {self.entity_id}"

    def get_absolute_url(self) -> str:
        return docs_url(self.entity)


class DocPage(models.Model):
    site = models.ForeignKey(DocSite, on_delete=models.CASCADE, related_name="pages")
    path = models.CharField(max_length=500)  # "" is the index; "guide/start/" for guide/start.md
    source_path = models.CharField(max_length=500)  # relative to the docs folder
    title = models.CharField(max_length=300)
    html = models.TextField(blank=True)  # sanitised
    toc = models.JSONField(default=list, blank=True)  # [{"level", "id", "name", "children"}]
    text = models.TextField(blank=True)  # plain text, for search
    order = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    source_hash = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["order"]
        constraints = [models.UniqueConstraint(fields=["site", "path"], name="one_doc_page_per_path")]

    def __str__(self) -> str:
        return self.source_path


class DocAsset(models.Model):
    """An image a page references, validated (magic bytes, size cap) and served by our view."""

    site = models.ForeignKey(DocSite, on_delete=models.CASCADE, related_name="assets")
    path = models.CharField(max_length=500)
    content_type = models.CharField(max_length=40)
    data = models.BinaryField()
    size = models.PositiveIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["site", "path"], name="one_doc_asset_per_path")]

    def __str__(self) -> str:
        return self.path


class ModelCard(models.Model):
    entity = models.OneToOneField(Entity, on_delete=models.CASCADE, related_name="model_card")
    status = models.CharField(max_length=10, choices=BuildStatus.choices, default=BuildStatus.PENDING)
    source_path = models.CharField(max_length=2000, blank=True)
    html = models.TextField(blank=True)
    toc = models.JSONField(default=list, blank=True)
    front_matter = models.JSONField(default=dict, blank=True)
    sections = models.JSONField(default=list, blank=True)  # H2 titles, in order
    error = models.TextField(blank=True)
    source_hash = models.CharField(max_length=64, blank=True)
    built_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"model card of {self.entity_id}"
