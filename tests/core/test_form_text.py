"""A form field whose bytes are not UTF-8 text is a 400 naming it, and nothing is stored: on pages
(`RejectNulMiddleware`) and in the API's form parsers (`portal.core.api`), urlencoded or multipart, the
bytes raw or %-escaped. Django would have stored them garbled: a raw byte of an urlencoded body read as
ISO-8859-1 ("caf\\xc3" → "cafÃ"), an escaped one or a multipart field's as U+FFFD.

Text that is UTF-8 passes as sent, U+FFFD itself too (EF BF BD); uploaded files are bytes and are not
looked at (a Parquet export, whose name is not ASCII, is queued as sent)."""

from __future__ import annotations

from html import escape

import pytest
from django.test import Client

from portal.accounts import services
from portal.accounts.models import APIToken
from portal.costs.models import CostImport
from tests.costs.conftest import line, write_parquet

pytestmark = pytest.mark.django_db

NOT_TEXT = 'Not "utf-8" text'
FORM = "application/x-www-form-urlencoded"
BOUNDARY = "plinthboundary"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
# Valid UTF-8 that is not ASCII: accents, an emoji (4 bytes), CJK, and U+FFFD sent as its own bytes.
LEGIT = ["café", "déploiement 🚀", "模型服务", "a \ufffd b"]


def multipart(fields: list[tuple[bytes, bytes]], file: tuple[bytes, bytes, bytes] | None = None) -> bytes:
    """A multipart body with `fields` (name, raw value bytes) and an optional file (field, name, content)."""
    parts = [b'--%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n' % (BOUNDARY.encode(), name, value)
             for name, value in fields]
    if file is not None:
        field, filename, content = file
        parts.append(b'--%s\r\nContent-Disposition: form-data; name="%s"; filename="%s"\r\n'
                     b"Content-Type: application/octet-stream\r\n\r\n%s\r\n" % (BOUNDARY.encode(), field, filename, content))
    return b"".join(parts) + b"--%s--\r\n" % BOUNDARY.encode()


@pytest.fixture
def grace(demo_org):
    return demo_org["users"]["grace"]


@pytest.fixture
def api(grace) -> Client:
    _, raw = services.token_create(user=grace, name="tests")
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


@pytest.fixture
def page(grace) -> Client:
    client = Client()
    client.force_login(grace)
    return client


def _names() -> set[str]:
    return set(APIToken.objects.values_list("name", flat=True))


@pytest.mark.parametrize(("body", "content_type", "field"), [
    (b"name=caf\xc3", FORM, "name"),  # a raw byte that starts a character and ends the body
    (b"name=caf%C3", FORM, "name"),  # the same, %-escaped
    (b"name=caf%C3%28", FORM, "name"),  # an escaped lead byte followed by one that cannot continue it
    (b"name=ok&expires_in_days=3&na%FFme=x", FORM, "na\ufffdme"),  # in a field's name
    (multipart([(b"name", b"caf\xc3")]), MULTIPART, "name"),
    (multipart([(b"name", b"ok"), (b"note", b"\xff\xfe")]), MULTIPART, "note"),
])
def test_an_api_form_field_that_is_not_utf8_is_a_400_naming_it(api, body, content_type, field):
    before = _names()
    response = api.generic("POST", "/api/v1/tokens", body, content_type=content_type)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["message"].startswith(f"{field}: {NOT_TEXT}"), error
    assert list(error["details"]) == [field]
    assert _names() == before


@pytest.mark.parametrize("name", LEGIT)
def test_utf8_in_an_api_form_is_stored_as_sent(api, name):
    from urllib.parse import quote

    raw = name.encode()
    for body, content_type in [(b"name=" + raw, FORM), (f"name={quote(name)}".encode(), FORM),
                               (multipart([(b"name", raw)]), MULTIPART)]:
        response = api.generic("POST", "/api/v1/tokens", body, content_type=content_type)
        assert response.status_code == 201, (body, response.content)
        assert response.json()["name"] == name
    assert APIToken.objects.filter(name=name).count() == 3


@pytest.mark.parametrize(("body", "content_type", "field"), [
    (b"name=caf\xc3&expires_in_days=", FORM, "name"),
    (b"name=caf%C3&expires_in_days=", FORM, "name"),
    (multipart([(b"name", b"caf\xc3"), (b"expires_in_days", b"")]), MULTIPART, "name"),
    (multipart([(b"name", b"ok"), (b"expires_in_days", b"\xc3")]), MULTIPART, "expires_in_days"),
])
def test_a_page_form_field_that_is_not_utf8_is_a_400_page_naming_it(page, body, content_type, field):
    before = _names()
    response = page.generic("POST", "/accounts/tokens/", body, content_type=content_type)
    assert response.status_code == 400
    assert "text/html" in response["Content-Type"]
    assert escape(f"{field}: {NOT_TEXT}") in response.content.decode()
    assert _names() == before


@pytest.mark.parametrize("name", LEGIT)
def test_utf8_in_a_page_form_is_stored_as_sent(page, name):
    from urllib.parse import quote

    raw = name.encode()
    for body, content_type in [(b"name=" + raw + b"&expires_in_days=", FORM),
                               (f"name={quote(name)}&expires_in_days=".encode(), FORM),
                               (multipart([(b"name", raw), (b"expires_in_days", b"")]), MULTIPART)]:
        response = page.generic("POST", "/accounts/tokens/", body, content_type=content_type)
        assert response.status_code == 200, (body, response.content[:300])
    assert APIToken.objects.filter(name=name).count() == 3


def test_the_page_refusal_comes_after_the_csrf_check_reads_the_form_and_before_any_view(grace):
    """The CSRF check reads `request.POST` first (the test client skips it unless asked): the multipart
    body is parsed strictly then, the token still read, and the field refused, not a 403."""
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(grace)
    browser.get("/accounts/tokens/")
    token = browser.cookies["csrftoken"].value.encode()
    before = _names()
    bad = multipart([(b"csrfmiddlewaretoken", token), (b"name", b"caf\xc3"), (b"expires_in_days", b"")])
    response = browser.generic("POST", "/accounts/tokens/", bad, content_type=MULTIPART)
    assert response.status_code == 400 and escape(f"name: {NOT_TEXT}") in response.content.decode()
    assert _names() == before
    fine = multipart([(b"csrfmiddlewaretoken", token), (b"name", "café".encode()), (b"expires_in_days", b"")])
    assert browser.generic("POST", "/accounts/tokens/", fine, content_type=MULTIPART).status_code == 200
    assert _names() == before | {"café"}
    no_token = multipart([(b"name", b"caf\xc3")])
    assert browser.generic("POST", "/accounts/tokens/", no_token, content_type=MULTIPART).status_code == 403


def test_an_uploaded_files_bytes_are_not_text_and_its_utf8_name_is_kept(page, api, tmp_path):
    content = write_parquet(tmp_path / "export.parquet", [line("2")]).read_bytes()
    with pytest.raises(UnicodeDecodeError):
        content.decode()
    filename = "coûts-€.parquet".encode()
    response = page.generic("POST", "/costs/imports/", multipart([(b"provider", b"aws")], (b"file", filename, content)),
                            content_type=MULTIPART)
    assert response.status_code == 302, response.content[:500]
    response = api.generic("POST", "/api/v1/costs/imports",
                           multipart([(b"provider", b"aws")], (b"file", filename, content)), content_type=MULTIPART)
    assert response.status_code == 202, response.content
    assert list(CostImport.objects.values_list("file_name", flat=True)) == ["coûts-€.parquet"] * 2
