# The target names an owner, and that owner is a team known to the portal.
package plinth.gates.ownership

import data.plinth.lib
import rego.v1

title := "Owner team set"

results(inp) := [
	lib.check(
		"owner-set",
		object.get(inp, ["target", "owner"], "") != "",
		sprintf("Owned by %v", [object.get(inp, ["target", "owner"], "")]),
		"spec.owner is not set",
	),
	lib.check(
		"owner-team-known",
		object.get(inp, ["target", "owner_team"], null) != null,
		sprintf("Owner team %v exists in Plinth", [object.get(inp, ["target", "owner_team"], "")]),
		"The owner is not a team in Plinth, so nobody can be held accountable",
	),
]

result := results(input)
