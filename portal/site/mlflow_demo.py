"""Seeds a local MLflow tracking server with demo registered models, versions, runs and aliases.

Idempotent: a model that already exists is left alone."""

from __future__ import annotations

import random

DEMO_MODELS = {
    "fraud-detector": {"type": "classifier", "versions": [0.88, 0.91, 0.93], "aliases": {"champion": 2, "challenger": 3}},
    "product-ranker": {"type": "ranker", "versions": [0.71, 0.74], "aliases": {"champion": 2}},
    "churn-predictor": {"type": "classifier", "versions": [0.79, 0.82], "aliases": {"champion": 1}},
}
# What each run logs with `mlflow.log_input`: (MLflow dataset name, source URI, context). The first two
# models read the demo catalog's Dataset entities (linked by name); the churn training set is in no
# descriptor, so the lineage app gives it an observed Dataset entity.
DEMO_INPUTS = {
    "fraud-detector": [("card-transactions-2025", "s3://ml-data/fraud/transactions/2025/", "training"),
                       ("chargebacks-2025", "s3://ml-data/fraud/chargebacks/2025/", "eval")],
    "product-ranker": [("clickstream-2025", "s3://ml-data/recsys/clickstream/2025/", "training")],
    "churn-predictor": [("churn-customers", "s3://ml-data/churn/customers-2025.parquet", "training")],
}


def seed(tracking_uri: str) -> dict:
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    created = {}
    rng = random.Random(42)  # noqa: S311 (reproducible demo data)
    for name, spec in DEMO_MODELS.items():
        try:
            client.get_registered_model(name)
            continue
        except MlflowException:
            pass
        experiment = client.get_experiment_by_name(f"{name}-training")
        experiment_id = experiment.experiment_id if experiment else client.create_experiment(f"{name}-training")
        client.create_registered_model(name, tags={"type": spec["type"]}, description=f"Demo {spec['type']} {name}")
        for number, auc in enumerate(spec["versions"], start=1):
            run = client.create_run(experiment_id, run_name=f"{name}-v{number}")
            run_id = run.info.run_id
            client.log_param(run_id, "learning_rate", str(round(0.05 + 0.01 * number, 3)))
            client.log_param(run_id, "n_estimators", str(200 * number))
            client.log_metric(run_id, "auc", auc)
            client.log_metric(run_id, "precision", round(auc - 0.05 - rng.random() * 0.02, 4))
            client.log_metric(run_id, "recall", round(auc - 0.1 - rng.random() * 0.03, 4))
            _log_inputs(run_id, DEMO_INPUTS.get(name, []), rng)
            client.set_terminated(run_id)
            client.create_model_version(name, source=f"runs:/{run_id}/model", run_id=run_id,
                                        description=f"Trained with {200 * number} trees")
        for alias, version in spec["aliases"].items():
            client.set_registered_model_alias(name, alias, str(version))
        created[name] = len(spec["versions"])
    return created


def _log_inputs(run_id: str, inputs: list[tuple[str, str, str]], rng: random.Random) -> None:
    """`mlflow.log_input` of a small pandas sample per input, its source the dataset's URI."""
    import mlflow
    import pandas as pd

    frame = pd.DataFrame({"amount": [round(rng.random() * 100, 2) for _ in range(5)],
                          "label": [rng.randint(0, 1) for _ in range(5)]})
    with mlflow.start_run(run_id=run_id):
        for dataset_name, uri, context in inputs:
            dataset = mlflow.data.from_pandas(frame, source=uri, name=dataset_name, targets="label")
            mlflow.log_input(dataset, context=context)
