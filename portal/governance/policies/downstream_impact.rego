# What depends on the target downstream (the lineage graph's impact list, computed when the gates run).
# Anything downstream is a warning; a production model or a live deployment downstream blocks.
#
# input.impact (portal/governance/impact.py):
#   computed   true when the impact list was computed (false or missing: fail closed)
#   hops       how far downstream it looked
#   total      every downstream asset, including those the requester may not see
#   total_label  e.g. "3 downstream assets"
#   by_kind    [{"kind", "count", "label"}]  e.g. {"kind": "model", "count": 2, "label": "2 models"}
#   critical   [{"ref", "kind", "reason", "team"}]  production models and live deployments every signed-in
#              user may see: named in messages
#   private    [{"reason", "count", "label"}]  e.g. label "2 private live deployments": critical assets that are private to a team (the requester
#              may see them): counted, never named, since everyone who reads the request reads the message
#   hidden     [{"reason", "count", "label"}]  critical assets the requester may not see: counted only
package plinth.gates.downstream_impact

import data.plinth.lib
import rego.v1

title := "Downstream impact"

results(inp) := array.concat(
	[computed(inp), dependants(inp)],
	array.concat(
		array.concat(
			[named(c) | some c in impact(inp).critical],
			array.concat([unnamed(p, "private") | some p in impact(inp).private], [unnamed(h, "hidden") | some h in impact(inp).hidden]),
		),
		summary(inp),
	),
)

# The impact object with every field present, whatever the input held (never undefined).
empty_impact := {
	"computed": false, "hops": 0, "total": 0, "total_label": "0 downstream assets",
	"by_kind": [], "critical": [], "private": [], "hidden": [],
}

impact(inp) := object.union(empty_impact, object.get(inp, "impact", {}))

is_computed(inp) := count([1 | impact(inp).computed == true]) > 0

computed(inp) := lib.check(
	"impact-computed",
	is_computed(inp),
	sprintf("Downstream assets looked up over %v hops", [impact(inp).hops]),
	"The downstream impact was not computed, so the gate cannot tell what depends on the target (fail closed)",
)

dependants(inp) := lib.warn_check(
	"downstream-dependants",
	impact(inp).total == 0,
	"Nothing depends on the target downstream",
	concat("", [
		impact(inp).total_label, verb(impact(inp).total), " on the target",
		breakdown(inp),
		"; their owners are notified",
	]),
)

breakdown(inp) := concat("", [": ", concat(", ", [k.label | some k in impact(inp).by_kind])]) if count(impact(inp).by_kind) > 0

breakdown(inp) := "" if count(impact(inp).by_kind) == 0

named(c) := lib.check(
	sprintf("critical:%v", [c.ref]),
	false,
	"",
	concat("", [
		sprintf("%v %v", [c.reason, c.ref]),
		owned_by(c),
		" depends on the target: it would break",
	]),
)

owned_by(c) := sprintf(" (team %v)", [c.team]) if object.get(c, "team", "") != ""

owned_by(c) := "" if object.get(c, "team", "") == ""

unnamed(group, why) := lib.check(
	concat("", [why, ":", replace(group.reason, " ", "-")]),
	false,
	"",
	concat("", [group.label, unnamed_note[why], verb(group.count), " on the target: it would break"]),
)

unnamed_note := {
	"private": " (private to a team: not named here, see the impact list if you may see it)",
	"hidden": " you cannot see",
}

verb(n) := " depends" if n == 1

verb(n) := " depend" if n != 1

critical_count(inp) := (count(impact(inp).critical) + sum([p.count | some p in impact(inp).private])) + sum([h.count | some h in impact(inp).hidden])

# When nothing critical depends on the target, say so (each critical asset has its own rule otherwise).
summary(inp) := [lib.check(
	"no-critical-dependants",
	true,
	"No production model or live deployment depends on the target",
	"",
)] if critical_count(inp) == 0

summary(inp) := [] if critical_count(inp) > 0

result := results(input)
