# Feature sets the model consumes exist and are not deprecated.
package plinth.gates.features

import data.plinth.lib
import rego.v1

title := "Consumed features not deprecated"

results(inp) := array.concat([listed(inp)], [feature(f) | some f in inp.features])

listed(inp) := lib.check(
	"features-listed",
	true,
	listed_message(count(inp.features)),
	"",
)

# Singular or plural, each a whole literal (regopy quotes strings built by other functions in sprintf).
listed_message(n) := "1 feature set consumed (spec.consumesFeatures)" if n == 1

listed_message(n) := sprintf("%v feature sets consumed (spec.consumesFeatures)", [n]) if n != 1

feature(f) := lib.check(
	sprintf("feature:%v", [f.ref]),
	usable(f),
	sprintf("%v is available", [f.ref]),
	sprintf("%v is deprecated or missing", [f.ref]),
)

# Always true or false, never undefined.
usable(f) := count([1 | object.get(f, "exists", false) == true; object.get(f, "deprecated", false) == false]) > 0

result := results(input)
