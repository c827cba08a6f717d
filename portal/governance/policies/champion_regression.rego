# The candidate is not worse than the version that holds the alias now, beyond a tolerance.
package plinth.gates.champion_regression

import data.plinth.lib
import rego.v1

title := "Candidate not worse than the current champion"

metric := "auc"

label := "AUC"

tolerance := 0.01

results(inp) := [compare(inp)]

compare(inp) := lib.check("no-regression", true, "No version holds the alias yet: nothing to compare", "") if {
	object.get(inp, "champion", null) == null
}

compare(inp) := lib.check(
	"no-regression",
	not_worse(inp),
	sprintf("%v %v vs %v %v for the current holder v%v (tolerance %v)", [label, cand(inp), label, champ(inp), inp.champion.version, tolerance]),
	sprintf("%v %v is worse than the current holder v%v (%v) beyond the tolerance %v", [label, cand(inp), inp.champion.version, champ(inp), tolerance]),
) if {
	object.get(inp, "champion", null) != null
}

cand(inp) := object.get(inp, ["candidate", "metrics", metric], "missing")

champ(inp) := object.get(inp, ["champion", "metrics", metric], "missing")

# Always true or false, never undefined. A champion without the metric cannot be compared: pass.
not_worse(inp) := count([1 | not is_number(champ(inp))]) + count([1 |
	is_number(champ(inp))
	is_number(cand(inp))
	cand(inp) >= champ(inp) - tolerance
]) > 0

result := results(input)
