"""The planner: what registering a location would change, from what the reader read and what the
catalog holds — entities to insert, update, remove or keep with errors, conflicts with other locations,
and descriptors the registrant may not claim. Engine-agnostic (its one lookup goes through
`catalog.ingest.engines`), and it writes nothing: `catalog.ingest.writer` stores the plan."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied

from portal.accounts import permissions
from portal.accounts.models import Team

from ..descriptors.errors import DescriptorError
from ..models import Entity, Location
from .engines import engine
from .reader import Candidate, Reader, ReadResult

GROUP_PREFIX = "group:default/"  # an owner ref that names a portal team


@dataclass
class Plan:
    target: str
    type: str
    location: Location | None
    read: ReadResult
    added: list[Candidate] = field(default_factory=list)
    changed: list[tuple[int, Candidate]] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[tuple[int, str]] = field(default_factory=list)  # (entity id, ref)
    kept_with_errors: list[tuple[int, str]] = field(default_factory=list)
    conflicts: list[DescriptorError] = field(default_factory=list)
    refused: list[DescriptorError] = field(default_factory=list)  # not the registrant's to claim
    created: bool = False
    # Entity id → owner team of the private entities among `removed`, read before they go (visible_to).
    private_removed: dict[int, int | None] = field(default_factory=dict)
    # Ref → owner team of this location's private entities (visible_to leaves them out of `unchanged`).
    private_here: dict[str, int | None] = field(default_factory=dict)
    # The errors about another entity that is private: (what is stored and shown to whoever may not see
    # it — its ref is taken, nothing more —, its owner team, what may be shown to whoever may).
    private_errors: list[tuple[DescriptorError, int | None, DescriptorError]] = field(default_factory=list)

    @property
    def errors(self) -> list[DescriptorError]:
        return self.read.errors + self.conflicts + self.refused

    def summary(self) -> dict:
        return {
            "target": self.target,
            "type": self.type,
            "added": sorted(c.ref for c in self.added),
            "changed": sorted(c.ref for _, c in self.changed),
            "removed": sorted(ref for _, ref in self.removed),
            "unchanged": len(self.unchanged),
            "errors": [e.as_dict() for e in self.errors],
        }

    def visible_to(self, user) -> Plan:
        """This plan as `user` may read it: the refs of entities they may not see (another team's
        private ones, which look exactly like missing ones) are left out of added, changed and removed.
        A refresh or a dry run may touch such entities (a location holds several teams' descriptors);
        its answer must not name them. Errors about another private entity say what they say about a
        missing one, except to whoever may see it. None (the system) gets the plan as stored; platform
        admins the whole plan."""
        if user is None:
            return self
        private = permissions.Visibility.PRIVATE
        told = {id(generic): specific for generic, team, specific in self.private_errors
                if permissions.may_see_owned(user, team, private)}
        errors = {"conflicts": [told.get(id(e), e) for e in self.conflicts],
                  "refused": [told.get(id(e), e) for e in self.refused]} if told else {}
        if permissions.is_platform_admin(user):
            return dataclasses.replace(self, **errors) if errors else self
        written = list(self.added) + [c for _, c in self.changed]
        names = {c.row["owner_ref"].removeprefix(GROUP_PREFIX) for c in written
                 if c.row["visibility"] == permissions.Visibility.PRIVATE and c.row["owner_ref"].startswith(GROUP_PREFIX)}
        teams = {f"{GROUP_PREFIX}{name}": pk for pk, name in
                 Team.objects.filter(name__in=names).values_list("id", "name")} if names else {}

        def shown(cand: Candidate) -> bool:
            row = cand.row
            return (row["visibility"] != permissions.Visibility.PRIVATE
                    or permissions.may_see_owned(user, teams.get(row["owner_ref"]), row["visibility"]))

        return dataclasses.replace(
            self, **errors, added=[c for c in self.added if shown(c)], changed=[(pk, c) for pk, c in self.changed if shown(c)],
            removed=[(pk, ref) for pk, ref in self.removed if pk not in self.private_removed
                     or permissions.may_see_owned(user, self.private_removed[pk], private)],
            unchanged=[ref for ref in self.unchanged if ref not in self.private_here
                       or permissions.may_see_owned(user, self.private_here[ref], private)])


class OwnershipRefused(PermissionDenied):
    """A new registration names owners (or organisation kinds) its registrant may not claim: nothing
    is stored, and every refused descriptor is listed."""

    def __init__(self, plan: Plan):
        self.plan = plan
        self.errors = plan.refused
        super().__init__(f"Nothing was registered: {len(plan.refused)} descriptor(s) name owners you may not claim. "
                         + " ".join(str(e) for e in plan.refused[:5]))


class Planner:
    """Compares candidates with the catalog, batch by batch as they are read, into `plan`; writes
    nothing."""

    def __init__(self, reader: Reader, location: Location | None, claims: permissions.OwnerClaims,
                 viewer=None):
        """`viewer`: whose sight decides what an existing entity of another location or source is to
        this read (the registrant; None: one who sees everything, the system)."""
        self.plan = Plan(target=reader.target, type=reader.kind, location=location, read=reader.result,
                         created=location is None)
        self.claims = claims
        self.viewer = viewer
        # owner ref -> team id, for the claims check (org-wide reads check nothing: no lookup).
        self.team_of: dict[str, int] = {} if claims.org_wide else {
            f"group:default/{name}": pk for pk, name in Team.objects.values_list("id", "name")}
        self.existing_here: dict[str, tuple[int, str, str]] = {}
        if location is not None:
            for pk, ref, digest, source, visibility, team_id in Entity.objects.filter(location=location).values_list(
                    "id", "ref", "content_hash", "source", "visibility", "owner_team_id"):
                self.existing_here[ref] = (pk, digest, source)
                if visibility == permissions.Visibility.PRIVATE:
                    self.plan.private_here[ref] = team_id

    def take(self, candidates: list[Candidate]) -> tuple[list[Candidate], list[tuple[int, Candidate]]]:
        """Sort candidates into the plan; returns the batch's (added, changed)."""
        plan, location = self.plan, self.plan.location
        added: list[Candidate] = []
        changed: list[tuple[int, Candidate]] = []
        elsewhere: dict[str, tuple[int, int | None, int | None, bool]] = {}
        for pk, ref, loc_id, team_id, visibility in engine().select_by_refs(
                ["id", "ref", "location_id", "owner_team_id", "visibility"],
                [c.ref for c in candidates if c.ref not in self.existing_here]):
            elsewhere[ref] = (pk, loc_id, team_id, visibility == permissions.Visibility.PRIVATE)
        claimed_by = dict(Location.objects.filter(
            pk__in={loc_id for _pk, loc_id, _team, _private in elsewhere.values() if loc_id}).values_list("pk", "target"))
        claims = None if self.claims.org_wide else self.claims
        for cand in candidates:
            ref = cand.ref
            if ref in self.existing_here:
                pk, digest, _ = self.existing_here[ref]
                if digest == cand.content_hash:
                    plan.unchanged.append(ref)
                elif not self._refused(cand, claims):
                    changed.append((pk, cand))
            elif ref in elsewhere:
                pk, loc_id, team_id, private = elsewhere[ref]
                hidden = private and not self._sees(team_id)
                if loc_id is not None and (location is None or loc_id != location.pk):
                    plan.conflicts.append(self._taken(cand, team_id, private, (
                        f"Entity {ref} is already registered by location '{claimed_by.get(loc_id, loc_id)}'; "
                        f"rejected from '{plan.target}'.")))
                elif claims is not None and hidden:
                    # Another team's private entity, known from MLflow or an orphan: not the registrant's
                    # to adopt, and refused exactly as one that another location defines.
                    plan.conflicts.append(self._taken(cand, team_id, private, ""))
                elif claims is not None and not claims.may_take_over(team_id):
                    plan.refused.append(self._taken(cand, team_id, private, (
                        f"Entity {ref} exists already (from MLflow, or orphaned) and belongs to a team in which "
                        "you may not edit; rejected.")))
                elif not self._refused(cand, claims):  # known only from MLflow, or an orphan: adopted
                    changed.append((pk, cand))
            elif not self._refused(cand, claims):
                added.append(cand)
        plan.added += added
        plan.changed += changed
        return added, changed

    def _sees(self, team_id: int | None) -> bool:
        """Whether the viewer may see a private entity of this owner team."""
        return self.viewer is None or permissions.may_see_owned(self.viewer, team_id, permissions.Visibility.PRIVATE)

    def _taken(self, cand: Candidate, team_id: int | None, private: bool, message: str) -> DescriptorError:
        """The error for a descriptor whose ref another location or source holds. Of a private entity,
        it says only that the name is taken (refs are unique org-wide, so that much cannot be hidden)
        — it is stored on the location, which others may read —, and `message` (where, whose) goes to
        whoever may see the entity (`Plan.visible_to`). Empty `message`: nothing more to tell anyone."""
        where = {"source": cand.source, "line": cand.line, "field": "metadata.name"}
        if not private:
            return DescriptorError(message, **where)
        generic = DescriptorError(f"Entity {cand.ref} exists already elsewhere in the catalog; rejected from "
                                  f"'{self.plan.target}'.", **where)
        if message:
            self.plan.private_errors.append((generic, team_id, DescriptorError(message, **where)))
        return generic

    def _refused(self, cand: Candidate, claims: permissions.OwnerClaims | None) -> bool:
        """Whether the registration may not store this descriptor (the refusal joins the plan's errors)."""
        if claims is None:
            return False
        owner = cand.row["owner_ref"]
        reason = claims.refusal(cand.kind_key, owner, self.team_of.get(owner))
        if reason is not None:
            self.plan.refused.append(DescriptorError(
                f"{cand.ref}: {reason}; rejected.", source=cand.source, line=cand.line,
                field="kind" if cand.kind_key in permissions.ORG_KINDS else "spec.owner"))
        return reason is not None

    def finish(self) -> None:
        """What the read no longer has: removed, or kept when its file could not be read."""
        plan, result = self.plan, self.plan.read
        error_sources = {e.source for e in result.errors}
        # Nothing could be read at all (a Feast repository whose configuration or registry is broken names
        # a file its entities do not come from): everything stays, flagged, until a read succeeds.
        unread = bool(result.errors) and not result.sources
        for ref, (pk, _digest, source) in self.existing_here.items():
            if ref in result.candidates or source in result.unchanged_sources:
                if source in result.unchanged_sources and ref not in result.candidates:
                    plan.unchanged.append(ref)
                continue
            if unread or source in error_sources:
                plan.kept_with_errors.append((pk, ref))
            else:
                plan.removed.append((pk, ref))
        removed_ids = [pk for pk, _ in plan.removed]
        for start in range(0, len(removed_ids), 5000):
            plan.private_removed.update(Entity.objects.filter(
                pk__in=removed_ids[start:start + 5000], visibility=permissions.Visibility.PRIVATE,
            ).values_list("id", "owner_team_id"))


def unreadable(location: Location, error: DescriptorError) -> Plan:
    """The plan of a registered location whose target cannot be read at all (its file or folder is
    gone): nothing added or removed, every entity kept and flagged, `error` the location's one error."""
    plan = Plan(target=location.target, type=location.type, location=location, read=ReadResult(errors=[error]))
    plan.kept_with_errors = list(Entity.objects.filter(location=location).values_list("id", "ref"))
    return plan


def refuse_aborted(reader: Reader, location: Location | None) -> None:
    """A new discovery location whose scan could not run (no such organisation, a rate limit, a host
    that refuses the token) is refused with that message, storing nothing; a registered one keeps its
    entities and shows the error."""
    if location is None and reader.aborted is not None:
        raise DescriptorError(reader.aborted.message, source=reader.target, field="target")


def compare(reader: Reader, location: Location | None, claims: permissions.OwnerClaims, viewer=None) -> Plan:
    """The plan of what `reader` has read against the catalog as it is now (`viewer`: see Planner)."""
    planner = Planner(reader, location, claims, viewer)
    planner.take(list(reader.result.candidates.values()))
    planner.finish()
    return planner.plan
