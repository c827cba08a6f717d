# Tests call `governed(…)` with a fixture (regopy cannot run `with input as`).
package plinth.rules.deployments_test

import data.plinth.rules.deployments
import rego.v1

test_prod_is_governed if deployments.governed({"environment": "prod", "model": {}})

test_prod_region_is_governed if deployments.governed({"environment": "prod-eu", "model": {}})

test_dev_is_not_governed if not deployments.governed({"environment": "dev", "model": {"riskTier": 1}})

test_staging_only_for_tier_one if {
	deployments.governed({"environment": "staging", "model": {"riskTier": 1}})
	not deployments.governed({"environment": "staging", "model": {"riskTier": 2}})
}
