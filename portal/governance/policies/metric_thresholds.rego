# Evaluation metrics of the candidate version (from its MLflow run) meet the risk tier's minimums.
package plinth.gates.metric_thresholds

import data.plinth.lib
import rego.v1

title := "Evaluation metrics meet the risk tier's thresholds"

# Minimum value per metric and risk tier. A model without a tier is held to tier 1.
thresholds := {
	"1": {"auc": 0.80},
	"2": {"auc": 0.75},
	"3": {"auc": 0.70},
}

results(inp) := [metric(inp, name, minimum) | minimum := thresholds[inp.target.tier_key][name]]

value(inp, name) := object.get(inp, ["candidate", "metrics", name], null)

# Human names of metrics (sprintf is only given literals and input values: see docs/governance.md).
labels := {"auc": "AUC"}

shown(inp, name) := value(inp, name) if value(inp, name) != null

shown(inp, name) := "missing" if value(inp, name) == null

metric(inp, name, minimum) := lib.check(
	concat("", [name, "-threshold"]),
	meets(inp, name, minimum),
	sprintf("%v %v ≥ %v required for risk tier %v", [labels[name], shown(inp, name), minimum, inp.target.tier_key]),
	sprintf("%v %v is below the %v required for risk tier %v", [labels[name], shown(inp, name), minimum, inp.target.tier_key]),
)

# Always true or false, never undefined: a rule that failed must not vanish from the results.
meets(inp, name, minimum) := count([1 | is_number(value(inp, name)); value(inp, name) >= minimum]) > 0

result := results(input)
