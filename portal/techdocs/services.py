"""Writes of the docs app: storing a site build and a model card build. Each in one transaction.

Builds are idempotent: the source hash (files, mkdocs.yml, builder version, served URL) is compared
with the stored one and an unchanged site is not rewritten. A build that fails as a whole (no folder,
escaping path, URL location) records its error and keeps the last good pages.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from catalog.models import Entity

from . import builder, modelcards, search
from .models import BuildStatus, DocAsset, DocPage, DocSite, ModelCard, docs_url

log = logging.getLogger("plinth.techdocs")


def site_base_url(entity: Entity) -> str:
    return docs_url(entity)


def docs_build(*, entity: Entity, force: bool = False) -> DocSite:
    """Build (or rebuild) the docs of one entity from its techdocs annotation."""
    site = DocSite.objects.filter(entity=entity).first()
    edit_url, edit_problem = _edit_url(entity)
    stored_hash = ("" if force or edit_problem or site is None or site.status == BuildStatus.FAILED
                   else site.source_hash)  # a build with an annotation problem is redone to record it
    try:
        docs_dir = builder.docs_dir_for(entity)
        sb = builder.SiteBuilder(docs_dir, base_url=site_base_url(entity), limit_root=builder.location_root(entity),
                                 stored_hash=stored_hash)
        result = sb.build()
    except builder.BuildError as exc:
        return _store_failure(entity, str(exc), edit_url)
    except OSError as exc:
        return _store_failure(entity, f"Could not read the docs folder: {exc.strerror or exc}", edit_url)
    result.errors.extend(edit_problem)
    if stored_hash and result.source_hash == stored_hash:
        DocSite.objects.filter(pk=site.pk).update(attempted_at=timezone.now(), edit_url=edit_url)
        site.refresh_from_db()
        paths = list(site.pages.values_list("path", flat=True))
        search.sync(entity.ref, current=paths, previous=paths)  # visibility or owner may have changed
        return site
    return _store(entity, result, edit_url)


def _edit_url(entity: Entity) -> tuple[str, list[dict]]:
    """The `backstage.io/edit-url` annotation if it is an http(s) URL that fits its column, and the
    problem of one that does not."""
    edit_url = entity.annotations.get(builder.EDIT_URL_ANNOTATION)
    if not (isinstance(edit_url, str) and edit_url.startswith(("https://", "http://"))):
        return "", []
    if len(edit_url) > builder.MAX_EDIT_URL:
        return "", [{"path": "", "message": f"The {builder.EDIT_URL_ANNOTATION} annotation is {len(edit_url)} "
                                            f"characters long, over {builder.MAX_EDIT_URL}; ignored."}]
    return edit_url, []


@transaction.atomic
def _store(entity: Entity, result: builder.SiteBuild, edit_url: str) -> DocSite:
    now = timezone.now()
    site, _ = DocSite.objects.select_for_update().get_or_create(entity=entity)
    previous = list(site.pages.values_list("path", flat=True))
    site.pages.all().delete()
    site.assets.all().delete()
    DocPage.objects.bulk_create([
        DocPage(site=site, path=p.path, source_path=p.source_path, title=p.title, html=p.html, toc=p.toc,
                text=p.text, order=p.order, error=p.error, source_hash=p.source_hash)
        for p in result.pages
    ], batch_size=200)
    DocAsset.objects.bulk_create([
        DocAsset(site=site, path=a.path, content_type=a.content_type, data=a.data, size=len(a.data))
        for a in result.assets
    ], batch_size=50)
    site.status = BuildStatus.PARTIAL if result.errors else BuildStatus.OK
    site.errors = result.errors
    site.source_dir = result.source_dir
    site.source_hash = result.source_hash
    site.site_name = result.site_name
    site.nav = result.nav
    site.nav_html = result.nav_html
    site.edit_url = edit_url
    site.edit_base = result.edit_base
    site.page_count = len(result.pages)
    site.built_at = site.attempted_at = now
    site.save()
    search.sync(entity.ref, current=[p.path for p in result.pages], previous=previous)
    return site


@transaction.atomic
def _store_failure(entity: Entity, message: str, edit_url: str) -> DocSite:
    site, _ = DocSite.objects.select_for_update().get_or_create(entity=entity)
    site.status = BuildStatus.FAILED
    site.errors = [{"path": "", "message": message}]
    site.source_hash = ""
    site.edit_url = edit_url
    site.attempted_at = timezone.now()
    site.save()
    return site


def docs_build_failed(*, entity: Entity, error: str, final: bool) -> None:
    """A build that could not be stored: the site says why, keeps its last good pages, and is built
    again in full next time."""
    if not builder.techdocs_ref(entity):
        return
    then = "Rebuild to try again" if final else "It is retried automatically; Rebuild to try at once"
    edit_url = DocSite.objects.filter(entity=entity).values_list("edit_url", flat=True).first() or ""
    _store_failure(entity, f"The build could not be stored: {error}. {then}.", edit_url)


@transaction.atomic
def model_card_build(*, entity: Entity) -> ModelCard:
    card, _ = ModelCard.objects.select_for_update().get_or_create(entity=entity)
    try:
        built = modelcards.build_card(entity)
    except builder.BuildError as exc:
        card.status, card.error, card.html, card.sections, card.toc = BuildStatus.FAILED, str(exc), "", [], []
        card.front_matter, card.source_hash = {}, ""
    except OSError as exc:
        card.status, card.error = BuildStatus.FAILED, f"Could not read the model card: {exc.strerror or exc}"
        card.html, card.sections, card.front_matter = "", [], {}
    else:
        card.status = BuildStatus.PARTIAL if built.error else BuildStatus.OK
        card.source_path, card.html, card.toc = built.source_path[:2000], built.html, built.toc
        card.front_matter, card.sections, card.error = built.front_matter, built.sections, built.error
        card.source_hash = built.source_hash
    card.built_at = timezone.now()
    card.save()
    return card


def entity_docs_build(*, entity: Entity, force: bool = False) -> dict:
    """Everything the docs app builds for one entity: its docs site and its model card."""
    done = {}
    if builder.techdocs_ref(entity):
        done["docs"] = docs_build(entity=entity, force=force).status
    if entity.kind_key == "model" and modelcards.model_card_path(entity):
        done["model_card"] = model_card_build(entity=entity).status
    elif entity.kind_key == "model":
        ModelCard.objects.filter(entity=entity).delete()
    if not builder.techdocs_ref(entity):  # the annotation was removed: the site and its pages go
        paths = list(DocPage.objects.filter(site__entity=entity).values_list("path", flat=True))
        if DocSite.objects.filter(entity=entity).delete()[0]:
            search.sync(entity.ref, current=[], previous=paths)
    return done


def needs_build(entity: Entity) -> bool:
    return bool(builder.techdocs_ref(entity)) or entity.kind_key == "model"


def docs_rebuild(*, actor, entity: Entity) -> None:
    """Queue a rebuild of an entity's docs and model card on behalf of `actor` (the edit right on the
    entity; a private entity of another team answers 404)."""
    from portal.accounts import permissions

    from . import receivers

    permissions.require(actor, permissions.Action.EDIT, entity)
    receivers.enqueue([entity.ref])
