from django import forms


class LocationForm(forms.Form):
    target = forms.CharField(
        max_length=2000,
        label="Location",
        help_text="A catalog-info.yaml file, a folder (every catalog-info.yaml below it) or an http(s) URL.",
        widget=forms.TextInput(attrs={"placeholder": "https://git.example.com/team/repo/raw/main/catalog-info.yaml", "autofocus": True}),
    )
