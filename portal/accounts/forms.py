from django import forms


class SignInForm(forms.Form):
    username = forms.CharField(max_length=150, widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "username"}))
    password = forms.CharField(max_length=256, strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))


class TokenCreateForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What the token is for, e.g. 'CI pipeline'.")
    expires_in_days = forms.TypedChoiceField(
        choices=[("", "Never"), ("7", "7 days"), ("30", "30 days"), ("90", "90 days"), ("365", "1 year")],
        coerce=int, empty_value=None, required=False, label="Expires",
    )
