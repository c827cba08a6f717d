"""factory_boy factories for the suite."""

from __future__ import annotations

from pathlib import Path

import factory
from django.contrib.auth import get_user_model

from catalog.ingest.reader import content_hash
from catalog.models import Entity
from portal.accounts.models import Membership, Role, Team

PASSWORD = "correct horse battery staple"


def write_files(root: Path, files: dict[str, str | bytes]) -> Path:
    """Write {relative path: text or bytes} under `root` (a descriptor tree for a test); returns root."""
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return root


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    @factory.post_generation
    def password(self, create, extracted, **kwargs):
        self.set_password(extracted or PASSWORD)
        if create:
            self.save(update_fields=["password"])


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"team-{n}")
    title = factory.LazyAttribute(lambda o: o.name.replace("-", " ").title())


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    team = factory.SubFactory(TeamFactory)
    role = Role.MEMBER


def _entity_data(o) -> dict:
    spec = {"type": o.spec_type, "lifecycle": o.lifecycle, "owner": o.owner_ref.split(":", 1)[-1] if o.owner_ref else ""}
    annotations = {"plinth.dev/visibility": o.visibility} if o.visibility == "private" else {}
    return {"apiVersion": "backstage.io/v1alpha1", "kind": o.kind,
            "metadata": {"name": o.name, "namespace": "default", "annotations": annotations, "tags": o.tags},
            "spec": spec}


class EntityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Entity

    kind = "Component"
    kind_key = factory.LazyAttribute(lambda o: o.kind.lower())
    namespace = "default"
    name = factory.Sequence(lambda n: f"entity-{n}")
    name_key = factory.LazyAttribute(lambda o: o.name.lower())
    ref = factory.LazyAttribute(lambda o: f"{o.kind_key}:default/{o.name_key}")
    api_version = "backstage.io/v1alpha1"
    spec_type = "service"
    lifecycle = "production"
    owner_team = None
    owner_ref = factory.LazyAttribute(lambda o: f"group:default/{o.owner_team.name}" if o.owner_team else "")
    visibility = "internal"
    tags = factory.LazyFunction(list)
    data = factory.LazyAttribute(_entity_data)
    content_hash = factory.LazyAttribute(lambda o: content_hash(o.data))
