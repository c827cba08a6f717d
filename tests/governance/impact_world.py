"""A small catalog for impact analysis, registered like any location: three fraud-ml datasets, each
feeding recsys models through `trainedOn` (a lineage edge dataset → model).

* `impact-prod-src`   → `impact-ranker` (production, internal)
* `impact-dev-src`    → `impact-churn` (experimental, internal), and → pipeline `impact-churn-scoring` →
  dataset `impact-churn-scores` (two hops away)
* `impact-hidden-src` → `impact-secret-ranker` (production, **private** to recsys)

alice (fraud-ml maintainer) may request changes to the datasets and may not see the secret ranker;
carol and dan (recsys) own the models and are the owners to notify."""

from __future__ import annotations

from pathlib import Path

DESCRIPTORS = """\
apiVersion: plinth.dev/v1alpha1
kind: Dataset
metadata: {name: impact-prod-src, title: Impact production source}
spec: {owner: fraud-ml, classification: internal}
---
apiVersion: plinth.dev/v1alpha1
kind: Dataset
metadata: {name: impact-dev-src, title: Impact dev source}
spec: {owner: fraud-ml, classification: internal}
---
apiVersion: plinth.dev/v1alpha1
kind: Dataset
metadata: {name: impact-hidden-src, title: Impact hidden source}
spec: {owner: fraud-ml, classification: internal}
---
apiVersion: plinth.dev/v1alpha1
kind: Model
metadata: {name: impact-ranker, title: Impact ranker}
spec: {owner: recsys, lifecycle: production, trainedOn: [impact-prod-src]}
---
apiVersion: plinth.dev/v1alpha1
kind: Model
metadata: {name: impact-churn, title: Impact churn}
spec: {owner: recsys, lifecycle: experimental, trainedOn: [impact-dev-src]}
---
apiVersion: plinth.dev/v1alpha1
kind: Pipeline
metadata: {name: impact-churn-scoring, title: Impact churn scoring}
spec: {type: batch-inference, owner: recsys, inputs: [impact-dev-src], outputs: [impact-churn-scores]}
---
apiVersion: plinth.dev/v1alpha1
kind: Dataset
metadata: {name: impact-churn-scores, title: Impact churn scores}
spec: {owner: recsys, classification: internal}
---
apiVersion: plinth.dev/v1alpha1
kind: Model
metadata:
  name: impact-secret-ranker
  title: Impact secret ranker
  annotations: {plinth.dev/visibility: private}
spec: {owner: recsys, lifecycle: production, trainedOn: [impact-hidden-src]}
"""


def register(folder: Path):
    from catalog import services

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "catalog-info.yaml").write_text(DESCRIPTORS, encoding="utf-8")
    plan = services.location_register(target=str(folder / "catalog-info.yaml"), actor=None, file_roots=None)
    assert not plan.errors, [str(e) for e in plan.errors]
    return plan
