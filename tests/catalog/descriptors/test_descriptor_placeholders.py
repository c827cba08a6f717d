"""$text / $json / $yaml substitution, relative targets and the location root."""

import os

import pytest

from catalog.descriptors.errors import DescriptorError
from catalog.descriptors.placeholders import resolve_placeholders, resolve_target


def file_reader(target):
    with open(target, "rb") as fh:
        return fh.read()


@pytest.fixture
def repo(tmp_path):
    (tmp_path / "apis").mkdir()
    (tmp_path / "apis" / "def.txt").write_text("openapi: 3.0.0\n")
    (tmp_path / "apis" / "def.json").write_text('{"a": [1, 2]}')
    (tmp_path / "apis" / "def.yaml").write_text("a: {b: 1}\n")
    (tmp_path / "apis" / "bad.json").write_text("{nope")
    (tmp_path / "apis" / "two.yaml").write_text("a: 1\n---\nb: 2\n")
    (tmp_path / "apis" / "evil.yaml").write_text("a: !!python/object/apply:os.system [ls]\n")
    (tmp_path / "shared.txt").write_text("shared")
    (tmp_path.parent / "outside.txt").write_text("secret")
    return tmp_path


def resolve(repo, data, **kw):
    kw.setdefault("root", str(repo))
    return resolve_placeholders(data, base=str(repo / "apis" / "x.yaml"), read=file_reader, **kw)


def test_text_json_yaml(repo):
    data = {
        "spec": {
            "definition": {"$text": "./def.txt"},
            "j": {"$json": "def.json"},
            "y": [{"$yaml": "def.yaml"}],
            "s": {"$text": "../shared.txt"},
        }
    }
    out = resolve(repo, data)
    assert out["spec"] == {
        "definition": "openapi: 3.0.0\n",
        "j": {"a": [1, 2]},
        "y": [{"a": {"b": 1}}],
        "s": "shared",
    }
    assert data["spec"]["definition"] == {"$text": "./def.txt"}  # input untouched


def test_non_placeholders_left_alone(repo):
    data = {"schema": {"$ref": "#/definitions/x"}, "two": {"$text": "a", "other": 1}, "n": {"$text": 5}}
    assert resolve(repo, data) == data


@pytest.mark.parametrize(
    "placeholder,fragment",
    [
        ({"$text": "missing.txt"}, "cannot read"),
        ({"$json": "bad.json"}, "not valid JSON"),
        ({"$yaml": "two.yaml"}, "exactly one YAML document"),
        ({"$yaml": "evil.yaml"}, "is not allowed"),
        ({"$text": "../../outside.txt"}, "outside the location root"),
        ({"$text": "/etc/passwd"}, "outside the location root"),
        ({"$text": "file:///etc/passwd"}, "only relative paths or http(s) URLs"),
    ],
)
def test_errors_name_field_and_target(repo, placeholder, fragment):
    with pytest.raises(DescriptorError) as info:
        resolve(repo, {"spec": {"definition": placeholder}})
    assert info.value.field == "spec.definition" and fragment in info.value.message


def test_default_root_is_descriptor_directory(repo):
    with pytest.raises(DescriptorError, match="outside the location root"):
        resolve(repo, {"a": {"$text": "../shared.txt"}}, root=None)


def test_symlink_escape_refused(repo):
    os.symlink(repo.parent / "outside.txt", repo / "apis" / "link.txt")
    with pytest.raises(DescriptorError, match="outside the location root"):
        resolve(repo, {"a": {"$text": "link.txt"}})


def test_size_cap_and_collected_errors(repo):
    with pytest.raises(DescriptorError, match="larger than"):
        resolve(repo, {"a": {"$text": "def.txt"}}, max_bytes=4)
    errors = []
    out = resolve(repo, {"a": {"$text": "missing"}, "b": {"$text": "def.txt"}}, errors=errors)
    assert out == {"a": {"$text": "missing"}, "b": "openapi: 3.0.0\n"} and errors[0].field == "a"


def test_url_bases_and_targets():
    seen = []

    def reader(target):
        seen.append(target)
        return b"body"

    base = "https://git.example.com/org/repo/blob/main/apis/x.yaml"
    out = resolve_placeholders(
        {"a": {"$text": "../def.yaml"}, "b": {"$text": "https://other/x"}}, base=base, read=reader
    )
    assert out == {"a": "body", "b": "body"}
    assert seen == ["https://git.example.com/org/repo/blob/main/def.yaml", "https://other/x"]
    with pytest.raises(ValueError):
        resolve_target("file:///etc/passwd", base=base)
