# The latest registered version comes from a run started in the last 90 days.
package plinth.checks.recent_training

import rego.v1

recent(f) if {
	f.mlflow.latest_run_age_days != null
	f.mlflow.latest_run_age_days <= 90
}

pass(f) if recent(f)

pass(f) := false if not recent(f)
