"""The relevance score of portal/search/scoring.py as SQL: one expression per search, the same on both
backends but for a few spellings (`Dialect`), over a table alias that has the ranking columns."""

from __future__ import annotations

from dataclasses import dataclass

from .. import scoring


@dataclass(frozen=True)
class Dialect:
    instr: str = "instr"  # position of a substring (PostgreSQL: strpos)
    greatest: str = "max"  # the larger of its arguments (PostgreSQL: GREATEST)
    float_cast: str = ""  # appended to constants (PostgreSQL: ::float8; as numeric they are slow)

    def number(self, value: float) -> str:
        return f"{float(value)!r}{self.float_cast}"


def in_list(column: str, values) -> tuple[str, list]:
    return f"{column} IN ({', '.join(['%s'] * len(values))})", list(values)


def like_prefix(text: str) -> str:
    """A LIKE pattern for `text` followed by anything (its own % and _ escaped with \\)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class ScoreSql:
    """SQL for one search: `score(t)`, `components(t)` (explain) and `tier(t)` (typeahead), each a
    (fragment, params) pair over table alias `t`. Every user value is a parameter."""

    def __init__(self, dialect: Dialect, spec) -> None:
        self.d = dialect
        self.spec = spec
        self.words = spec.scored_words()  # as matched: stems, or spelling corrections
        self.name_words = spec.name_words()  # as typed: names and proximity compare with these
        self.fields = scoring.NAME_FIELDS if spec.fields == "names" else tuple(scoring.WEIGHTS)

    def name_forms(self) -> tuple[str, str]:
        """The query as a name: its words dashed ("fraud-detector") and spaced ("fraud detector")."""
        return "-".join(self.name_words), " ".join(self.name_words)

    # -- the parts --------------------------------------------------------------------------------
    def field(self, t: str, letter: str) -> tuple[str, list]:
        """The evidence of one field: the sum over query words of the field's weight where the word
        occurs as a whole word (or its plural), PARTIAL of it where it only starts a longer one."""
        d = self.d
        weight, partial = scoring.WEIGHTS[letter], round(scoring.WEIGHTS[letter] * scoring.PARTIAL, 4)
        col, zero = f"{t}.ev_{letter}", d.number(0)
        found = (
            f"CASE WHEN {d.instr}({col}, %s) > 0 OR {d.instr}({col}, %s) > 0 "
            f"THEN {d.number(weight)} ELSE {d.number(partial)} END"
        )
        others = [f for f in scoring.WEIGHTS if f != "b"]
        parts, params = [], []
        for group in self.words:
            checks = []
            for word in group:
                params += [f" {word}", f" {word} ", f" {word}s "]  # present, whole word, plural
                if letter != "b":
                    checks.append(f"CASE WHEN {d.instr}({col}, %s) = 0 THEN {zero} ELSE ({found}) END")
                    continue
                # Beyond the body words kept ("~"), a matching word found in no field is in the body.
                elsewhere = " AND ".join(f"{d.instr}({t}.ev_{f}, %s) = 0" for f in others)
                checks.append(
                    f"CASE WHEN {d.instr}({col}, %s) > 0 THEN ({found}) "
                    f"WHEN {d.instr}({col}, '~') > 0 AND {elsewhere} THEN {d.number(weight)} ELSE {zero} END"
                )
                params += [f" {word}"] * len(others)
            parts.append(checks[0] if len(checks) == 1 else f"{d.greatest}({', '.join(checks)})")
        return ("(" + " + ".join(parts) + ")" if parts else zero), params

    def proximity(self, t: str) -> tuple[str, list]:
        """ADJACENT per word after the first when all the words occur side by side, in order, in one
        field (the last one as a prefix, like every word)."""
        if len(self.name_words) < 2:
            return self.d.number(0), []
        checks = " OR ".join(f"{self.d.instr}({t}.ev_{letter}, %s) > 0" for letter in self.fields)
        bonus = self.d.number(scoring.ADJACENT * (len(self.name_words) - 1))
        return (
            f"(CASE WHEN {checks} THEN {bonus} ELSE {self.d.number(0)} END)",
            [" " + " ".join(self.name_words)] * len(self.fields),
        )

    def _name_cases(self, t: str, exact: str, words: str, prefix: str, other: str) -> tuple[str, list]:
        dashed, spaced = self.name_forms()
        like = like_prefix(dashed)
        return (
            f"(CASE WHEN {t}.name = %s OR {t}.name = %s OR LOWER({t}.title) = %s THEN {exact} "
            f"WHEN {t}.name LIKE %s ESCAPE '\\' THEN {words} "
            f"WHEN {t}.name LIKE %s ESCAPE '\\' THEN {prefix} ELSE {other} END)",
            [dashed, spaced, spaced, like[:-1] + "-%", like],
        )

    def name_signal(self, t: str) -> tuple[str, list]:
        if not self.name_words:
            return self.d.number(0), []
        n = self.d.number
        return self._name_cases(t, n(scoring.NAME_EXACT), n(scoring.NAME_WORDS), n(scoring.NAME_PREFIX), n(0))

    def tier(self, t: str) -> tuple[str, list]:
        """Typeahead's first sort key: 0 the name (or title) is the query; 1 the name starts with its
        whole words; 2 with its letters; 3 anything else."""
        if not self.name_words:
            return "3", []
        return self._name_cases(t, "0", "1", "2", "3")

    def personal(self, t: str) -> tuple[str, list]:
        spec, n = self.spec, self.d.number
        mine, mparams = in_list(f"{t}.owner_team_id", spec.my_team_ids) if spec.my_team_ids else ("1=0", [])
        star, sparams = in_list(f"{t}.key", spec.boosted_keys) if spec.boosted_keys else ("1=0", [])
        return (
            f"(CASE WHEN ({mine}) AND ({star}) THEN {n(round(1 + scoring.MINE + scoring.STARRED, 4))} "
            f"WHEN {mine} THEN {n(1 + scoring.MINE)} WHEN {star} THEN {n(1 + scoring.STARRED)} ELSE {n(1)} END)",
            mparams + sparams + mparams + sparams,
        )

    # -- the whole --------------------------------------------------------------------------------
    def score(self, t: str) -> tuple[str, list]:
        """(BASE + evidence + proximity + name signal) × (quality + popularity) × personal."""
        parts, params = [self.d.number(scoring.BASE)], []
        for sql, p in [self.field(t, letter) for letter in self.fields] + [self.proximity(t), self.name_signal(t)]:
            parts.append(sql)
            params += p
        personal, pp = self.personal(t)
        return f"(({' + '.join(parts)}) * ({t}.quality + {t}.popularity) * {personal})", params + pp

    def components(self, t: str) -> tuple[list[str], list]:
        """The score's parts, in COMPONENTS order (fields the search does not score are 0)."""
        exprs, params = [], []
        pieces = [self.field(t, f) if f in self.fields else (self.d.number(0), []) for f in scoring.WEIGHTS]
        pieces += [self.proximity(t), self.name_signal(t), (f"{t}.quality", []), (f"{t}.popularity", []),
                   self.personal(t)]
        for sql, p in pieces:
            exprs.append(sql)
            params += p
        return exprs, params


COMPONENTS = (*(f"evidence_{scoring.FIELD_NAMES[f]}" for f in scoring.WEIGHTS), "proximity", "name_signal",
              "quality", "popularity", "personal")
