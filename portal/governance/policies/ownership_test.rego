package plinth.gates.ownership_test

import data.plinth.gates.ownership
import rego.v1

test_owned_by_known_team_passes if {
	results := ownership.results({"target": {"owner": "group:default/fraud-ml", "owner_team": "fraud-ml"}})
	count([r | some r in results; r.pass == false]) == 0
}

test_unknown_owner_team_fails if {
	some r in ownership.results({"target": {"owner": "group:default/ghosts", "owner_team": null}})
	r.rule == "owner-team-known"
	r.pass == false
}

test_no_owner_fails if {
	some r in ownership.results({"target": {"owner": ""}})
	r.rule == "owner-set"
	r.pass == false
}
