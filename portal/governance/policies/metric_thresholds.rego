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

# Human names of metrics (sprintf is only given literals, numbers and input values: a string another rule
# computed comes out of regopy quoted, unescaped, and breaks its JSON answer; see docs/governance.md).
labels := {"auc": "AUC"}

# Two bodies, one for a number and one for anything else: each rule is in the results exactly once.
metric(inp, name, minimum) := lib.check(
	concat("", [name, "-threshold"]),
	value(inp, name) >= minimum,
	sprintf("%v %v ≥ %v required for risk tier %v", [labels[name], value(inp, name), minimum, inp.target.tier_key]),
	sprintf("%v %v is below the %v required for risk tier %v", [labels[name], value(inp, name), minimum, inp.target.tier_key]),
) if is_number(value(inp, name))

metric(inp, name, minimum) := lib.check(
	concat("", [name, "-threshold"]),
	false,
	"",
	sprintf("%v missing: at least %v required for risk tier %v", [labels[name], minimum, inp.target.tier_key]),
) if not is_number(value(inp, name))

result := results(input)
