# Helpers shared by every gate. A gate's `results(inp)` returns one entry per rule:
# {"rule": id, "pass": bool, "message": text a reviewer can read}.
package plinth.lib

import rego.v1

check(id, ok, pass_msg, fail_msg) := {"rule": id, "pass": true, "message": pass_msg} if ok

check(id, ok, pass_msg, fail_msg) := {"rule": id, "pass": false, "message": fail_msg} if not ok
