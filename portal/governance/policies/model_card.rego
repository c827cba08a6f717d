# The model card exists and has every required section.
package plinth.gates.model_card

import data.plinth.lib
import rego.v1

title := "Model card present with its required sections"

required_sections := ["intended use", "training data", "metrics", "limitations", "ethical considerations"]

results(inp) := array.concat([present(inp)], [section(inp, s) | some s in required_sections])

present(inp) := lib.check(
	"model-card-present",
	object.get(inp, ["model_card", "present"], false) == true,
	sprintf("Model card found (%v)", [object.get(inp, ["model_card", "path"], "")]),
	"No model card: set spec.modelCard to a Markdown file next to the descriptor",
)

section(inp, s) := lib.check(
	concat("", ["section-", replace(s, " ", "-")]),
	s in object.get(inp, ["model_card", "sections"], []),
	sprintf("Section \"%v\" present", [s]),
	sprintf("Section \"%v\" missing from the model card", [s]),
)

result := results(input)
