"""API definitions: OpenAPI operations table and checks, AsyncAPI/GraphQL/protobuf summaries, the tab and API."""

import pytest

from catalog import services as catalog_services
from catalog.models import Entity
from portal.techdocs import definitions

OPENAPI = """openapi: 3.0.3
info:
  title: Pets
  version: "2.1"
  description: "Pets **API**. <script>window.__xss=1</script>"
servers: [{url: https://pets.example.com}]
paths:
  /pets/{id}:
    parameters:
      - {name: id, in: path, required: true, schema: {type: string}}
    get:
      operationId: getPet
      summary: Get a pet
      parameters: [{$ref: '#/components/parameters/Verbose'}]
      responses:
        '200': {description: The pet, content: {application/json: {schema: {$ref: '#/components/schemas/Pet'}}}}
        '404': {$ref: '#/components/responses/NotFound'}
    delete:
      summary: Delete a pet
      deprecated: true
      responses: {'204': {description: Gone}}
components:
  parameters:
    Verbose: {name: verbose, in: query, schema: {type: boolean}}
  responses:
    NotFound: {description: No such pet}
  schemas:
    Pet:
      type: object
      properties:
        name: {type: string}
        parent: {$ref: '#/components/schemas/Pet'}
"""


def test_openapi_operations_table():
    d = definitions.analyse("openapi", OPENAPI)
    assert d.errors == [] and d.interactive
    assert d.info == {"title": "Pets", "version": "2.1", "openapi": "3.0.3", "servers": ["https://pets.example.com"]}
    get, delete = d.operations
    assert (get["method"], get["path"], get["operation_id"]) == ("GET", "/pets/{id}", "getPet")
    assert [p["name"] for p in get["parameters"]] == ["id", "verbose"] and get["parameters"][0]["required"]
    assert get["responses"] == [{"code": "200", "description": "The pet"}, {"code": "404", "description": "No such pet"}]
    assert delete["deprecated"]
    assert "<strong>API</strong>" in d.description_html and "script" not in d.description_html
    assert '<span class="nt">openapi</span>' in d.source_html


def test_the_table_shows_commonmark_descriptions_as_the_text_a_reader_sees():
    """Descriptions are CommonMark (the viewers render them); the table shows them as text, not marks."""
    d = definitions.analyse("openapi", OPENAPI.replace(
        "summary: Get a pet\n", "summary: Get a pet\n      description: \"Reads **one** pet by `id` (see [the guide](https://x/g)).\"\n"
    ).replace("{description: No such pet}", "{description: \"No pet with this `id`; *snake_case_name* stays\"}"))
    get = d.operations[0]
    assert get["description"] == "Reads one pet by id (see the guide)."
    assert get["responses"][1]["description"] == "No pet with this id; snake_case_name stays"
    assert definitions.plain("2*3*4 and a * b") == "2*3*4 and a * b" and definitions.plain(None) == ""


def test_swagger_2_is_accepted():
    d = definitions.analyse("openapi", '{"swagger": "2.0", "info": {"title": "Old", "version": "1"}, '
                                       '"paths": {"/x": {"post": {"summary": "Make", "responses": {"201": {"description": "ok"}}}}}}')
    assert d.errors == [] and d.operations[0]["method"] == "POST"


@pytest.mark.parametrize("text, message", [
    ("openapi: 3.0.0\ninfo: {title: T}\npaths:\n  /a: {get: {responses: {'200': {$ref: '#/components/responses/A'}}}}\n"
     "components:\n  responses:\n    A: {$ref: '#/components/responses/B'}\n    B: {$ref: '#/components/responses/A'}\n",
     "Cyclic $ref: #/components/responses/A -> #/components/responses/B -> #/components/responses/A"),
    ("openapi: 3.0.0\ninfo: {title: T}\npaths:\n  /a: {get: {responses: {'200': {$ref: '#/nowhere'}}}}\n",
     "$ref '#/nowhere' does not resolve"),
    ("openapi: 3.0.0\ninfo: {title: T}\npaths:\n  /a: {get: {responses: {'200': {$ref: 'other.yaml#/x'}}}}\n",
     "external $ref 'other.yaml#/x' is not supported"),
    ("openapi: 3.0.0\ninfo: {title: T}\npaths: [1, 2]\n", "'paths' must be a mapping"),
    ("info: {title: T}\n", "Not an OpenAPI document"),
    ("openapi: 3.0.0\ninfo: {title: [unclosed\n", "Not valid YAML/JSON"),
    ("openapi: 3.0.0\ninfo: {title: T}\npaths: {}\nx: &a [*a]\n", "Not valid YAML/JSON"),
    ("", "has no definition"),
])
def test_invalid_openapi_documents_give_clear_errors(text, message):
    d = definitions.analyse("openapi", text)
    assert any(message in e for e in d.errors), d.errors
    assert not d.interactive


def test_asyncapi_channels():
    d = definitions.analyse("asyncapi", """asyncapi: 2.6.0
info: {title: Scores, version: '1'}
channels:
  transactions.scored:
    description: Scores as they are produced
    subscribe: {message: {name: Score}}
""")
    assert d.errors == [] and d.channels[0]["name"] == "transactions.scored"
    assert d.channels[0]["operations"] == ["subscribe"]


def test_graphql_types():
    d = definitions.analyse("graphql", '''"""Root"""
type Query {
  model(name: String!): Model
  models: [Model!]!
}
type Model { name: String # comment
  versions: [String] }
enum Stage { STAGING PRODUCTION }
scalar Date
''')
    kinds = {t["name"]: t for t in d.types}
    assert kinds["Query"]["root"] and kinds["Query"]["fields"] == ["model", "models"]
    assert kinds["Model"]["fields"] == ["name", "versions"] and kinds["Stage"]["kind"] == "enum"
    assert "Date" in kinds and '<span class="k' in d.source_html


def test_protobuf_services():
    d = definitions.analyse("grpc", """syntax = "proto3";
package fraud.v1;
// Scoring
service Scorer {
  rpc Score (ScoreRequest) returns (ScoreReply);
  rpc Stream (stream ScoreRequest) returns (stream ScoreReply) {}
}
message ScoreRequest { string id = 1; }
message ScoreReply { float score = 1; }
""")
    assert d.info == {"package": "fraud.v1"}
    assert d.services == [{"name": "Scorer", "rpcs": [
        {"name": "Score", "request": "ScoreRequest", "response": "ScoreReply"},
        {"name": "Stream", "request": "stream ScoreRequest", "response": "stream ScoreReply"}]}]
    assert [t["name"] for t in d.types] == ["ScoreRequest", "ScoreReply"]


@pytest.mark.django_db
def test_definition_tab_replaces_the_raw_one_and_works_without_javascript(client, demo_org):
    client.force_login(demo_org["users"]["alice"])
    html = client.get("/catalog/api/default/fraud-scoring-api/definition/").content.decode()
    assert html.count('role="tab"') == len(set(__import__("re").findall(r'role="tab" href="([^"]+)"', html)))
    assert 'data-testid="operations"' in html and "<code>/v1/score</code>" in html and "scoreTransaction" in html
    assert 'data-spec-url="/api/v1/techdocs/definitions/api/default/fraud-scoring-api"' in html
    assert "swagger-ui-dist/swagger-ui-bundle.js" in html and "js/techdocs.js" in html
    assert "<script>" not in html.split("<main")[1]  # no inline scripts
    spec = client.get("/api/v1/techdocs/definitions/api/default/fraud-scoring-api").json()
    assert spec["info"]["title"] == "Fraud scoring API" and "/v1/score" in spec["paths"]
    assert client.get("/api/v1/techdocs/definitions/model/default/fraud-detector").status_code == 404


@pytest.mark.django_db
def test_the_platform_api_entity_renders_its_own_schema(client, demo_org):
    client.force_login(demo_org["users"]["alice"])
    html = client.get("/catalog/api/default/plinth-api/definition/").content.decode()
    assert "Plinth API" in html and "/api/v1/techdocs/sites" in html and 'data-testid="definition-errors"' not in html


@pytest.mark.django_db
def test_a_long_source_is_fetched_when_its_section_is_opened(client, demo_org):
    """Plinth's own API (350 kB of YAML) made its tab a 1.7 MB page: a folded source longer than
    SOURCE_INLINE_MAX is fetched by the Source section when opened; a short one stays inline."""
    from portal.techdocs.tabs import SOURCE_INLINE_MAX

    client.force_login(demo_org["users"]["alice"])
    response = client.get("/catalog/api/default/plinth-api/definition/")
    html = response.content.decode()
    source = "/docs/api/default/plinth-api/_definition-source/"
    assert len(response.content) < 200_000, len(response.content)  # 113 kB: the operations table
    assert f'hx-get="{source}" hx-trigger="toggle once"' in html and "Loading the source…" in html
    fragment = client.get(source, HTTP_HX_REQUEST="true")
    assert fragment.status_code == 200 and "<html" not in fragment.content.decode()
    text = definitions.source_text(Entity.objects.get(ref="api:default/plinth-api"))
    assert len(text) > SOURCE_INLINE_MAX and len(fragment.content) > len(text)  # highlighted, whole
    assert "/api/v1/techdocs/sites" in fragment.content.decode()
    plain = client.get(source)  # not htmx (a link opened in a tab): the definition tab itself
    assert plain.status_code == 302 and plain["Location"] == "/catalog/api/default/plinth-api/definition/"
    assert client.get("/docs/model/default/fraud-detector/_definition-source/", HTTP_HX_REQUEST="true").status_code == 404
    assert client.get("/docs/api/default/no-such-api/_definition-source/", HTTP_HX_REQUEST="true").status_code == 404
    short = client.get("/catalog/api/default/fraud-scoring-api/definition/").content.decode()
    assert "_definition-source" not in short and 'data-testid="definition-source"><div class="codehilite"' in short


@pytest.mark.django_db
def test_broken_definition_shows_errors_on_the_tab(client, demo_org, tmp_path):
    (tmp_path / "catalog-info.yaml").write_text(
        "apiVersion: backstage.io/v1alpha1\nkind: API\nmetadata: {name: loopy}\n"
        "spec: {type: openapi, lifecycle: production, owner: fraud-ml, definition: {$text: ./api.yaml}}\n")
    (tmp_path / "api.yaml").write_text(
        "openapi: 3.0.0\ninfo: {title: Loopy}\npaths: {}\ncomponents:\n  schemas:\n"
        "    A: {$ref: '#/components/schemas/A'}\n")
    catalog_services.location_register(target=str(tmp_path / "catalog-info.yaml"), actor=None, file_roots=None)
    client.force_login(demo_org["users"]["alice"])
    html = client.get("/catalog/api/default/loopy/definition/").content.decode()
    assert 'data-testid="definition-errors"' in html and "Cyclic $ref" in html
    assert "data-spec-url" not in html  # no interactive viewer for an invalid document
    assert client.get("/catalog/api/default/fraud-scoring-api/definition/").status_code == 200  # others unaffected
