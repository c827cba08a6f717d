"""The reviewer's decision and the new-request form (which version and alias, which team, why)."""

from __future__ import annotations

from django import forms

from .models import ActionType, DecisionKind


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=DecisionKind.choices)
    comment = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))


class NewRequestForm(forms.Form):
    """`versions`: the target model's versions, newest first (the version field's choices; the first
    one the alias does not already point at is offered)."""

    action = forms.ChoiceField(choices=ActionType.choices, widget=forms.HiddenInput)
    target = forms.CharField(widget=forms.HiddenInput)
    version = forms.ChoiceField(required=False, label="Version")
    alias = forms.CharField(
        required=False,
        initial="champion",
        label="Alias",
        help_text="The MLflow alias that will point at this version once approved.",
    )
    team = forms.CharField(required=False, label="Team that needs access")
    reason = forms.CharField(required=False, label="Reason")
    justification = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        label="Justification",
        help_text="Why, and what reviewers should look at.",
    )

    def __init__(self, data=None, *, action: str, target: str, versions: list) -> None:
        default = next((v.version for v in versions if "champion" not in v.aliases), "")
        super().__init__(data, initial={"action": action, "target": target, "alias": "champion", "version": default})
        self.fields["version"].choices = [(v.version, _version_label(v)) for v in versions]

    def params(self) -> dict:
        """The action's parameters as `services.request_create` takes them (a valid form)."""
        cleaned = self.cleaned_data
        action = cleaned["action"]
        if action == ActionType.PROMOTE_MODEL_VERSION:
            return {"version": cleaned["version"], "alias": cleaned["alias"] or "champion"}
        if action == ActionType.GRANT_ACCESS:
            return {"team": cleaned["team"]}
        if action in (ActionType.DEPRECATE, ActionType.RETIRE) and cleaned["reason"]:
            return {"reason": cleaned["reason"]}
        return {}


def _version_label(version) -> str:
    """`v3 (champion) · auc 0.91`: the version, its aliases and its AUC when logged."""
    aliases = f" ({', '.join(version.aliases)})" if version.aliases else ""
    auc = version.metrics.get("auc")
    return f"v{version.version}{aliases}" + (f" · auc {auc}" if auc is not None else "")
