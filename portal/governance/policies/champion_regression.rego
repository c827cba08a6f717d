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

# One body per case, so that sprintf is only given numbers and input values (a string another rule computed,
# like "missing", comes out of regopy unescaped and breaks its JSON answer: every gate then failed).
compare(inp) := lib.check(
	"no-regression",
	cand(inp) >= champ(inp) - tolerance,
	sprintf("%v %v vs %v %v for the current holder v%v (tolerance %v)", [label, cand(inp), label, champ(inp), inp.champion.version, tolerance]),
	sprintf("%v %v is worse than the current holder v%v (%v) beyond the tolerance %v", [label, cand(inp), inp.champion.version, champ(inp), tolerance]),
) if {
	object.get(inp, "champion", null) != null
	is_number(champ(inp))
	is_number(cand(inp))
}

# A champion without the metric cannot be compared: pass.
compare(inp) := lib.check(
	"no-regression",
	true,
	sprintf("The current holder v%v has no %v: nothing to compare", [inp.champion.version, label]),
	"",
) if {
	object.get(inp, "champion", null) != null
	not is_number(champ(inp))
}

compare(inp) := lib.check(
	"no-regression",
	false,
	"",
	sprintf("The candidate has no %v; the current holder v%v has %v", [label, inp.champion.version, champ(inp)]),
) if {
	object.get(inp, "champion", null) != null
	is_number(champ(inp))
	not is_number(cand(inp))
}

cand(inp) := object.get(inp, ["candidate", "metrics", metric], null)

champ(inp) := object.get(inp, ["champion", "metrics", metric], null)

result := results(input)
