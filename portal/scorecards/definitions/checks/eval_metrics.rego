# The latest registered version's evaluation metric meets the risk tier's minimum (the thresholds of the
# governance gate metric_thresholds: AUC 0.80 / 0.75 / 0.70; a model without a tier is held to tier 1).
# Written without comprehensions: it is evaluated once per distinct (metrics, tier), which at scale is
# nearly once per model.
package plinth.checks.eval_metrics

import rego.v1

minimum(f) := 0.75 if f.risk_tier == 2

minimum(f) := 0.70 if f.risk_tier == 3

minimum(f) := 0.80 if {
	f.risk_tier != 2
	f.risk_tier != 3
}

ok(f) if {
	f.mlflow.versions > 0
	f.mlflow.metrics.auc >= minimum(f)
}

pass(f) if ok(f)

pass(f) := false if not ok(f)
