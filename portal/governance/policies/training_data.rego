# Training datasets exist, are classified, and PII use by the owning team is approved.
package plinth.gates.training_data

import data.plinth.lib
import rego.v1

title := "Training data classified, PII use approved"

classifications := {"public", "internal", "confidential", "pii", "restricted"}

results(inp) := array.concat(
	[declared(inp)],
	array.concat([classified(d) | some d in inp.datasets], [pii(d) | some d in inp.datasets]),
)

declared(inp) := lib.check(
	"datasets-declared",
	count(object.get(inp, "datasets", [])) > 0,
	declared_message(count(object.get(inp, "datasets", []))),
	"No training dataset declared (spec.trainedOn)",
)

# Singular or plural, each a whole literal (regopy quotes strings built by other functions in sprintf).
declared_message(n) := "1 training dataset declared in spec.trainedOn" if n == 1

declared_message(n) := sprintf("%v training datasets declared in spec.trainedOn", [n]) if n != 1

classified(d) := lib.check(
	sprintf("classified:%v", [d.ref]),
	object.get(d, "classification", "") in classifications,
	sprintf("%v is classified %v", [d.ref, object.get(d, "classification", "")]),
	sprintf("%v has no classification (or does not exist in the catalog)", [d.ref]),
)

pii(d) := lib.check(
	sprintf("pii-approved:%v", [d.ref]),
	pii_ok(d),
	pii_pass_message(d),
	sprintf("%v holds PII and its use by the owner team is not approved (request grant-access)", [d.ref]),
)

# Always true or false, never undefined.
pii_ok(d) := count([1 | object.get(d, "pii", true) == false]) + count([1 | object.get(d, "pii_use_approved", false) == true]) > 0

pii_pass_message(d) := sprintf("%v holds no PII", [d.ref]) if object.get(d, "pii", true) == false

pii_pass_message(d) := sprintf("%v holds PII; its use is approved", [d.ref]) if object.get(d, "pii", true) != false

result := results(input)
