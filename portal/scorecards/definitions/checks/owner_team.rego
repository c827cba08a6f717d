# The entity names an owner, and that owner is a team known to Plinth.
package plinth.checks.owner_team

import rego.v1

pass(f) if f.owner.team != null

pass(f) := false if f.owner.team == null
