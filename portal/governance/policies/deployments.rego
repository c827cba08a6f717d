# Which environments are governed: a model version serving there needs an executed approval
# (a promote request for that version whose alias maps to the environment), otherwise the
# deployments app flags compliance drift. Not a gate: portal.deployments asks
# `governed_environment` for each live deployment (policy.rule_value); errors fail closed (governed).
#
# input: {"environment": "prod", "platform": "kserve",
#         "model": {"ref": "model:default/x", "lifecycle": "production", "riskTier": 2, "owner": "group:default/t"}}
package plinth.rules.deployments

import rego.v1

production_like := {"prod", "production"}

governed(inp) if inp.environment in production_like

governed(inp) if startswith(inp.environment, "prod-")

# Risk tier 1 models are governed in staging too: their staging traffic is real customers' shadow data.
governed(inp) if {
	inp.environment == "staging"
	object.get(inp, ["model", "riskTier"], 0) == 1
}

default governed_environment := false

governed_environment if governed(input)
