from django import forms


class LocationForm(forms.Form):
    target = forms.CharField(
        max_length=2000,
        label="Location",
        help_text="A catalog-info.yaml file, a folder (every catalog-info.yaml below it), an http(s) URL (GitHub, "
                  "GitLab, Bitbucket and Azure DevOps file URLs as copied from the browser), a Feast feature "
                  "repository as feast:/path/to/repo, or every repository of an organisation as "
                  "github-discovery:https://github.com/ORG (gitlab-discovery:https://gitlab.com/GROUP).",
        widget=forms.TextInput(attrs={"placeholder": "https://git.example.com/team/repo/raw/main/catalog-info.yaml", "autofocus": True}),
    )


# The example on the register page. It names what the demo catalog holds (owner, system, feature set,
# dataset), so that registering it as it stands works; tests/catalog/test_register_sample.py checks it.
SAMPLE_DESCRIPTOR = """apiVersion: plinth.dev/v1alpha1
kind: Model
metadata:
  name: card-fraud-scorer
  title: Card fraud scorer
  description: Scores card transactions for fraud risk.
  tags: [fraud, classification]
  annotations:
    mlflow.org/registered-model: card-fraud-scorer
spec:
  type: classifier
  lifecycle: experimental
  owner: fraud-ml
  system: fraud-detection
  consumesFeatures: [featureset:default/card-transactions-features]
  trainedOn: [dataset:default/card-transactions-2025]
"""
