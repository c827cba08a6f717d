"""The entity kinds Plinth accepts: Backstage's built-in kinds plus our ML kinds.

Owns: KindSpec and KINDS, the single table from which validation (apiVersion, schema file, which
spec fields are entity references and how they default) and relation derivation both read, so the
two can never disagree about what `spec.owner` or `spec.trainedOn` means.
"""

from __future__ import annotations

from dataclasses import dataclass, field

BACKSTAGE = ("backstage.io/v1alpha1", "backstage.io/v1beta1")
PLINTH = ("plinth.dev/v1alpha1",)


@dataclass(frozen=True)
class RefField:
    """A spec field holding entity reference(s)."""

    name: str  # key under `spec`
    relation: str  # outgoing relation type derived from it
    default_kind: str | None  # None: the reference must spell its kind
    many: bool = False  # a list of references rather than one
    object_key: str | None = None  # list items may be mappings holding the ref under this key
    allowed_kinds: tuple[str, ...] = ()  # non-empty: the target kind must be one of these
    # Backstage only checks the ref's shape, not its characters; lenient fields keep that behaviour
    # (no error, and no relation when the ref does not parse under our stricter name rules).
    lenient: bool = False


@dataclass(frozen=True)
class KindSpec:
    kind: str  # canonical spelling, e.g. "FeatureSet"
    api_versions: tuple[str, ...]
    schema: str  # file name in catalog/schemas/
    required: tuple[str, ...]  # required spec fields (documentation; the schema enforces them)
    refs: tuple[RefField, ...] = ()
    # spec.type value -> schema file, for kinds whose shape depends on the type (Backstage does this
    # for API type mcp-server and AiResource skill/rule).
    type_schemas: dict[str, str] = field(default_factory=dict)
    plural: str = ""  # how pages name several ("Datasets", "Feature sets"); _spec fills it in
    # How pages name one ("Feature set"): words, not the descriptor's spelling, which stays for what is
    # typed (`kind: FeatureSet`, refs `featureset:default/x`, filters `kind:featureset`, the API).
    singular: str = ""

    def label(self, count: int) -> str:
        """The kind as a page names `count` of them: "1 Feature set", "5 Feature sets"."""
        return self.singular if count == 1 else self.plural


_OWNER = RefField("owner", "ownedBy", "group")
_SYSTEM = RefField("system", "partOf", "system")
_DEPENDS_ON = RefField("dependsOn", "dependsOn", None, many=True)
_DEPENDENCY_OF = RefField("dependencyOf", "dependencyOf", None, many=True)


def _spec(kind, versions, required, *refs, type_schemas=None, plural=None, singular=None) -> KindSpec:
    return KindSpec(kind, versions, f"{kind}.schema.json", required, refs, type_schemas or {}, plural or f"{kind}s",
                    singular or kind)


KINDS: dict[str, KindSpec] = {
    s.kind: s
    for s in (
        _spec(
            "Component",
            BACKSTAGE,
            ("type", "lifecycle", "owner"),
            _OWNER,
            _SYSTEM,
            RefField("subcomponentOf", "partOf", "component"),
            RefField("providesApis", "providesApi", "api", many=True),
            RefField("consumesApis", "consumesApi", "api", many=True),
            _DEPENDS_ON,
            _DEPENDENCY_OF,
        ),
        _spec(
            "API",
            BACKSTAGE,
            ("type", "lifecycle", "owner", "definition"),
            _OWNER,
            _SYSTEM,
            type_schemas={"mcp-server": "API.mcp-server.schema.json"},
        ),
        _spec("Resource", BACKSTAGE, ("type", "owner"), _OWNER, _SYSTEM, _DEPENDS_ON, _DEPENDENCY_OF),
        _spec("System", BACKSTAGE, ("owner",), _OWNER, RefField("domain", "partOf", "domain")),
        _spec("Domain", BACKSTAGE, ("owner",), _OWNER, RefField("subdomainOf", "partOf", "domain")),
        _spec(
            "Group",
            BACKSTAGE,
            ("type", "children"),
            RefField("parent", "childOf", "group"),
            RefField("children", "parentOf", "group", many=True),
            RefField("members", "hasMember", "user", many=True),
        ),
        _spec("User", BACKSTAGE, ("memberOf",), RefField("memberOf", "memberOf", "group", many=True)),
        _spec("Location", BACKSTAGE, ()),
        # Backstage's own templates use e-mail owners ("web@example.com"): accept them.
        _spec(
            "Template",
            ("scaffolder.backstage.io/v1beta3",),
            ("type", "steps"),
            RefField("owner", "ownedBy", "group", lenient=True),
        ),
        _spec(
            "AiResource",
            ("backstage.io/v1alpha1",),
            ("type", "lifecycle", "owner"),
            _OWNER,
            _SYSTEM,
            _DEPENDS_ON,
            type_schemas={"skill": "AiResource.skill.schema.json", "rule": "AiResource.rule.schema.json"},
            plural="AI resources",
            singular="AI resource",
        ),
        _spec(
            "Model",
            PLINTH,
            ("owner",),
            _OWNER,
            _SYSTEM,
            _DEPENDS_ON,
            RefField(
                "consumesFeatures",
                "consumesFeatures",
                "featureset",
                many=True,
                object_key="featureSet",
                allowed_kinds=("featureset",),
            ),
            RefField("trainedOn", "trainedOn", "dataset", many=True, allowed_kinds=("dataset",)),
        ),
        _spec("FeatureSet", PLINTH, ("owner",), _OWNER, _SYSTEM,
              RefField("inputs", "consumesDataset", "dataset", many=True, allowed_kinds=("dataset",)),
              plural="Feature sets", singular="Feature set"),
        _spec(
            "Pipeline",
            PLINTH,
            ("owner", "type"),
            _OWNER,
            _SYSTEM,
            _DEPENDS_ON,
            RefField("inputs", "consumesDataset", "dataset", many=True, allowed_kinds=("dataset",)),
            RefField("outputs", "producesDataset", "dataset", many=True, allowed_kinds=("dataset",)),
        ),
        _spec("Dataset", PLINTH, ("owner",), _OWNER, _SYSTEM),
        # Written by portal.deployments from CD events and MLflow aliases; owned like its model (a model
        # nobody owns has unowned deployments, so `owner` is not required).
        _spec(
            "Deployment",
            PLINTH,
            ("model", "version", "environment"),
            _OWNER,
            _SYSTEM,
            RefField("model", "deploymentOf", "model", allowed_kinds=("model",)),
            RefField("servedBy", "servedBy", None, allowed_kinds=("component", "api")),
        ),
    )
}


BY_KEY: dict[str, KindSpec] = {k.lower(): s for k, s in KINDS.items()}


def kind_label(kind: str, count: int) -> str:
    """`kind` ("FeatureSet", or its key "featureset") as a page names `count` of them: its singular for
    one ("Feature set"), its plural otherwise ("Feature sets"); a kind this table does not know is shown
    as given, with an "s" for several. The one place pages get a kind's name from (the template filters
    `kind_name` and `kind_count` call it)."""
    spec = BY_KEY.get((kind or "").lower())
    if spec is not None:
        return spec.label(count)
    return kind if count == 1 else f"{kind}s"


def kinds_json() -> str:
    """The kind table as the SDK's offline validator reads it (sdk/src/plinth_sdk/schemas/kinds.json,
    written by `manage.py catalog sdk-schemas`; tests/sdk checks that it matches)."""
    import json

    table = {k: {"apiVersions": list(s.api_versions), "schema": s.schema, "typeSchemas": dict(s.type_schemas)}
             for k, s in KINDS.items()}
    return json.dumps(table, indent=2, sort_keys=True) + "\n"
