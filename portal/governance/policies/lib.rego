# Helpers shared by every gate. A gate's `results(inp)` returns one entry per rule:
# {"rule": id, "pass": bool, "message": text a reviewer can read}, and optionally "severity":
# "warn" for a rule whose failure is shown to reviewers but never blocks. A rule without a severity
# blocks when it fails (under the workflow's `block` enforcement): fail closed.
package plinth.lib

import rego.v1

check(id, ok, pass_msg, fail_msg) := {"rule": id, "pass": true, "message": pass_msg} if ok

check(id, ok, pass_msg, fail_msg) := {"rule": id, "pass": false, "message": fail_msg} if not ok

# Like check, but a failure is a warning: reviewers see it, the request goes on.
warn_check(id, ok, pass_msg, fail_msg) := {"rule": id, "pass": true, "message": pass_msg, "severity": "warn"} if ok

warn_check(id, ok, pass_msg, fail_msg) := {"rule": id, "pass": false, "message": fail_msg, "severity": "warn"} if not ok
