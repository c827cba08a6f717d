"""The OpenLineage JSON Schema (spec 2-0-x and the standard facets), read from the folder named by
`PLINTH_OPENLINEAGE_SPEC_DIR` and compiled once per process.

The spec is not shipped inside the repository, and `openlineage-python` does not ship it either (its
wheel has the generated classes only): a deployment provides the folder (`OpenLineage.json` and
`facets/*.json` from the OpenLineage repository at a pinned tag, see docs/lineage.md). Without it the
endpoint answers 503 rather than accept events it cannot check."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import fastjsonschema
import orjson
from django.conf import settings
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

# Where a facet file's facet goes, from its name's ending (longest first).
_PLACES = (("InputDatasetFacet", "inputFacets"), ("OutputDatasetFacet", "outputFacets"),
           ("DatasetFacet", "facets:dataset"), ("JobFacet", "facets:job"), ("RunFacet", "facets:run"))
EVENT_DEFS = {"run": "RunEvent", "dataset": "DatasetEvent", "job": "JobEvent"}


class SpecMissing(RuntimeError):
    pass


MEMO_ENTRIES = 4096  # documents remembered as valid per checker (then forgotten all at once)
MEMO_MAX_BYTES = 4096  # larger documents are checked every time


@dataclass(frozen=True)
class Checker:
    """A compiled check (fastjsonschema, ~30x faster) for the common case, a valid document; the
    jsonschema validator only to name the failing field of an invalid one."""

    fast: Callable[[dict], object]
    full: Draft202012Validator
    valid: set = field(default_factory=set, compare=False, hash=False)  # see errors_memo

    def errors(self, document: dict) -> list:
        try:
            self.fast(document)
        except fastjsonschema.JsonSchemaException:
            return list(self.full.iter_errors(document)) or [_Disagreement(document)]
        return []

    def errors_memo(self, document: dict) -> list:
        """`errors`, remembering documents found valid by their orjson text: producers send the same
        facet (a table's schema, a job's column lineage) with every event of every run. The text is
        the key because it is type-exact where Python's equality is not (`true`, `1` and `1.0` are three
        keys; True == 1 == 1.0). Only for values orjson parsed: it writes NaN as null, so a document
        json parsed could share a key with another. Invalid documents are never remembered."""
        try:
            key = orjson.dumps(document)
        except TypeError:  # an integer beyond 64 bits: nothing to remember it by
            return self.errors(document)
        if key in self.valid:
            return []
        errors = self.errors(document)
        if not errors and len(key) <= MEMO_MAX_BYTES:
            if len(self.valid) >= MEMO_ENTRIES:
                self.valid.clear()
            self.valid.add(key)
        return errors


class _Disagreement:
    """fastjsonschema refused what jsonschema accepts: refuse it anyway (fail closed), at the top."""

    def __init__(self, document):
        self.absolute_path, self.path, self.message = (), (), "does not match the OpenLineage schema"
        self.validator, self.validator_value, self.instance = "", None, document


@dataclass(frozen=True)
class Spec:
    events: dict[str, Checker]  # event kind → check of that event definition
    facets: dict[tuple[str, str], Checker]  # (place, facet name) → check of {name: facet}
    version: str


def spec_dir() -> Path:
    return Path(settings.PLINTH_OPENLINEAGE_SPEC_DIR or "")


def load() -> Spec:
    """The compiled spec; raises SpecMissing naming the folder when it is not there."""
    return _load(str(spec_dir()))


@functools.cache
def _load(folder: str) -> Spec:
    root = Path(folder)
    main_path = root / "OpenLineage.json"
    if not folder or not main_path.is_file():
        raise SpecMissing(f"The OpenLineage spec was not found at {main_path} (PLINTH_OPENLINEAGE_SPEC_DIR)")
    main = json.loads(main_path.read_text())
    documents = {main["$id"]: main}
    facet_docs: list[tuple[str, dict]] = []
    for path in sorted((root / "facets").glob("*.json")):
        doc = json.loads(path.read_text())
        documents[doc["$id"]] = doc
        facet_docs.append((path.stem, doc))
    registry = Registry().with_resources([(uri, Resource.from_contents(doc)) for uri, doc in documents.items()])

    def resolve(uri: str) -> dict:  # every $ref stays inside the folder: nothing is fetched
        return documents[uri.split("#", 1)[0]]

    def checker(ref: str) -> Checker:
        fast = fastjsonschema.compile({"$ref": ref}, handlers={"https": resolve, "http": resolve},
                                      use_default=False, use_formats=False)
        return Checker(fast=fast, full=Draft202012Validator({"$ref": ref}, registry=registry))

    events = {kind: checker(f"{main['$id']}#/$defs/{name}") for kind, name in EVENT_DEFS.items()}
    facets: dict[tuple[str, str], Checker] = {}
    for stem, doc in facet_docs:
        place = next((p for suffix, p in _PLACES if stem.endswith(suffix)), None)
        if place is None:
            continue
        for name in doc.get("properties", {}):
            facets[(place, name)] = checker(doc["$id"])
    version = main["$id"].rstrip("/").split("/")[-2]  # …/spec/2-0-2/OpenLineage.json
    return Spec(events=events, facets=facets, version=version)
