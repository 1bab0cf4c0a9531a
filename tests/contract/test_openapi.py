"""openapi.yaml, the relay's HTTP contract, checked against the code: a valid OpenAPI 3.1
document; the routes of template.yaml and of the handlers, no more and no less; every answer the
handlers give (accepted, duplicate, skipped, ignored, and every rejection) with a documented
status, content type, headers and body; and the request schemas accept the sample events of
events/ that the relay accepts, and refuse the one it refuses for its body.

tests/e2e/test_fuzz.py holds the running local stack to the same document with generated requests.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
from pathlib import Path
from urllib.parse import quote, unquote

import pytest
import requests
import yaml
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_openapi
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from clay_relay.http_api import ALLOWED_ELSEWHERE
from local_stack.gateway import Gateway
from local_stack.sandboxes import Sandboxes
from local_stack.template import HttpRoute, Template, load_template
from tests.conftest import fresh_runtime
from tests.contract.attack_requests import (
    DIRECTUS_EVENT,
    LEAD,
    LOOPS_CONTACT,
    LOOPS_EVENT,
    MAX_BODY,
    ROUTES,
    relay_stack,
    request,
    signed_by_hmac,
)
from tests.invocations import default_config
from tests.loops_requests import contact_created, loops_event_body

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = yaml.safe_load((ROOT / "openapi.yaml").read_text(encoding="utf-8"))
REGISTRY = Registry().with_resource(
    "urn:clay-relay:openapi", Resource.from_contents(CONTRACT, default_specification=DRAFT202012)
)
HTTP_FUNCTIONS = {"DirectusTriggerFunction", "ClayCallbackFunction", "LoopsForwarderFunction"}
# Answered by API Gateway itself (throttling, a function that died), never by the relay's handlers.
GATEWAY_ONLY = {"429", "502"}


def schema_at(pointer: str) -> Draft202012Validator:
    """A validator of the schema at `pointer` in the document (its $refs resolved in the document)."""
    return Draft202012Validator({"$ref": f"urn:clay-relay:openapi#{pointer}"}, registry=REGISTRY)


def escaped(segment: str) -> str:
    return quote(segment.replace("~", "~0").replace("/", "~1"), safe="~")


def operation_pointer(path: str) -> str:
    return f"/paths/{escaped(path)}/post"


def response_pointer(path: str | None, status: int) -> str:
    """Where the response object of `status` is (following a $ref to components/responses)."""
    if path is None:  # any method but POST, on any route
        return "/components/responses/MethodNotAllowed"
    response = CONTRACT["paths"][path]["post"]["responses"][str(status)]
    if "$ref" in response:
        return response["$ref"].removeprefix("#")
    return f"{operation_pointer(path)}/responses/{status}"


def resolve(pointer: str) -> dict:
    node: object = CONTRACT
    for part in pointer.strip("/").split("/"):
        node = node[unquote(part).replace("~1", "/").replace("~0", "~")]  # type: ignore[index]
    return node  # type: ignore[return-value]


def documented_path(raw_path: str) -> str:
    """The document's path that serves `raw_path` (`/directus/leads` → `/directus/{source}`)."""
    for path in CONTRACT["paths"]:
        if HttpRoute("ANY", path, "").match("POST", raw_path) is not None:
            return path
    raise AssertionError(f"no documented path serves {raw_path}")


# --- the document ----------------------------------------------------------------------------------------
def test_the_contract_is_a_valid_openapi_3_1_document():
    assert CONTRACT["openapi"].startswith("3.1.")
    validate_openapi(CONTRACT)


@pytest.mark.parametrize("name", CONTRACT["components"]["schemas"])
def test_every_schema_of_the_contract_is_a_valid_json_schema(name):
    Draft202012Validator.check_schema(CONTRACT["components"]["schemas"][name])


def template_routes() -> list[HttpRoute]:
    functions = Template(load_template(), "test").functions()
    return [route for spec in functions.values() for route in spec.routes]


def route_serving(path: str, routes: list[HttpRoute]) -> HttpRoute:
    """The template's route that serves a documented path (`/loops/webhook` → `ANY /loops/{route}`)."""
    concrete = path.replace("{source}", "leads")
    matching = [route for route in routes if route.match("POST", concrete) is not None]
    assert len(matching) == 1, f"{path} is served by {matching}"
    return matching[0]


def test_every_route_of_the_template_is_documented_and_every_documented_path_is_a_route_of_it():
    routes = template_routes()
    assert {route.function for route in routes} == HTTP_FUNCTIONS
    assert all(route.method == "ANY" for route in routes)
    served = {route_serving(path, routes).path for path in CONTRACT["paths"]}
    assert served == {route.path for route in routes}


def handler_app(function: str):
    """The Powertools resolver of a fresh copy of the function's app.py."""
    folder = {
        "DirectusTriggerFunction": "directus_trigger",
        "ClayCallbackFunction": "clay_callback",
        "LoopsForwarderFunction": "loops_forwarder",
    }[function]
    spec = importlib.util.spec_from_file_location(f"{folder}_openapi_app", ROOT / "functions" / folder / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.app


def test_the_documented_operations_are_exactly_the_post_routes_of_the_handlers():
    routes = template_routes()
    documented = {(route_serving(path, routes).function, path) for path in CONTRACT["paths"]}
    handled = set()
    for function in HTTP_FUNCTIONS:
        app = handler_app(function)
        for route in app._static_routes + app._dynamic_routes:
            if route.method == "POST":
                handled.add((function, route.path.replace("<", "{").replace(">", "}")))
    assert handled == documented
    for path, item in CONTRACT["paths"].items():
        assert set(item) == {"post"}, f"{path}: POST is the only operation; other methods are components' 405"


def test_every_rejection_code_of_the_relay_is_documented_with_its_status():
    from clay_relay import errors

    codes = {
        cls.code: cls.status
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.RelayError) and cls is not errors.RelayError
    }
    assert set(codes) == set(CONTRACT["components"]["schemas"]["Error"]["properties"]["error"]["enum"])
    for code, status in codes.items():
        if status == 405:
            continue
        for path, item in CONTRACT["paths"].items():
            if code == "invalid_payload" and path == "/loops/webhook":
                continue  # an authentic Loops event is always 202 (ignored when unreadable)
            assert str(status) in item["post"]["responses"], f"{path} does not document {status} {code}"


# --- the handlers' answers -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with relay_stack(tmp_path_factory.mktemp("openapi")) as stack:
        yield stack


@pytest.fixture
def relay(stack):
    send = stack.sender()

    def conforming(event: dict) -> tuple[int, dict, dict]:
        """The handler's answer to `event`, checked against the contract."""
        status, headers, text = send(event)
        method = event["requestContext"]["http"]["method"]
        path = None if method != "POST" else documented_path(event["rawPath"])
        if path is not None:
            assert str(status) in CONTRACT["paths"][path]["post"]["responses"], (path, status, text)
        else:
            assert status == 405, text
        pointer = response_pointer(path, status)
        response = resolve(pointer)
        assert headers["Content-Type"] in response["content"], headers
        body = json.loads(text)
        schema_at(f"{pointer}/content/application~1json/schema").validate(body)
        for name, header in response.get("headers", {}).items():
            if headers.get(name) is None:
                assert not header.get("required"), f"{name} is missing from {status} {text}"
                continue
            Draft202012Validator(header["schema"]).validate(headers.get(name))
        return status, headers, body

    return conforming


@contextlib.contextmanager
def configured(tmp_path: Path, config: dict | str):
    """The functions read another relay.json (a dict, or text that is none) for a while."""
    path = tmp_path / "other-relay.json"
    path.write_text(config if isinstance(config, str) else json.dumps(config), encoding="utf-8")
    before = os.environ["RELAY_CONFIG_PATH"]
    os.environ["RELAY_CONFIG_PATH"] = str(path)
    fresh_runtime()
    try:
        yield
    finally:
        os.environ["RELAY_CONFIG_PATH"] = before
        fresh_runtime()


def on_path(event: dict, path: str, parameters: dict) -> dict:
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["pathParameters"] = parameters
    return event


ACCEPTED = [  # route, body: each a documented request body but the last
    ("directus", DIRECTUS_EVENT),
    ("directus", {**DIRECTUS_EVENT, "event": "leads.items.update", "keys": [2, "3"], "payload": {"first_name": "A"}}),
    ("directus", {**DIRECTUS_EVENT, "event": "leads.items.update", "keys": ["2"], "payload": {"unmapped": 1}}),
    ("directus", {**DIRECTUS_EVENT, "event": "leads.items.delete", "keys": ["1"], "payload": ["1"]}),
    ("clay", LEAD),
    ("clay", {**LEAD, "icp_score": 95, "directus_id": 7}),
    ("clay", {**LEAD, "icp_score": "55%"}),
    ("clay", {**LEAD, "icp_score": "12", "employee_count": ""}),
    ("loops-webhook", contact_created()),
    ("loops-webhook", loops_event_body("email.delivered")),
    ("loops-contacts", LOOPS_CONTACT),
    ("loops-contacts", {"userId": "u-1", "mailingLists": {"list": True}}),
    ("loops-events", LOOPS_EVENT),
    ("loops-events", {**LOOPS_EVENT, "eventProperties": {"plan": "pro"}}),
    ("loops-webhook", {"not": "a loops event"}),  # authentic, so 202 (ignored), though no Loops event
]


@pytest.mark.parametrize(("route", "body"), ACCEPTED)
def test_an_accepted_request_and_its_repeat_are_answered_as_documented(relay, route, body):
    for _ in range(2):  # the second time a duplicate (or a new Loops webhook-id)
        assert relay(request(route, body))[0] == 202
    assert documented_request_body(request(route, body)) is (body is not ACCEPTED[-1][1])


def test_a_request_signed_by_hmac_instead_of_a_token_is_answered_as_documented(relay):
    assert relay(signed_by_hmac())[0] == 202


REJECTED = [
    ("directus: not JSON", lambda: request("directus", '{"event": "a "quoted" word"}'), 400),
    ("clay: a JSON array", lambda: request("clay", "[1]"), 400),
    ("loops-webhook: empty", lambda: request("loops-webhook", b""), 400),
    ("loops-contacts: NaN", lambda: request("loops-contacts", '{"email": NaN}'), 400),
    ("loops-events: deeply nested", lambda: request("loops-events", "[" * 70 + "]" * 70), 400),
    ("directus: wrong token", lambda: request("directus", headers={"authorization": "Bearer nope"}), 401),
    ("clay: no token", lambda: request("clay", headers={"authorization": None}), 401),
    ("clay: a wrong signature", lambda: signed_by_hmac(signature=lambda body: "sha256=00"), 401),
    ("loops-webhook: unsigned", lambda: request("loops-webhook", signed=False), 401),
    ("loops-contacts: wrong token", lambda: request("loops-contacts", headers={"authorization": "x"}), 401),
    ("loops-events: no token", lambda: request("loops-events", headers={"authorization": None}), 401),
    ("directus: unknown source", lambda: on_path(request("directus"), "/directus/nope", {"source": "nope"}), 404),
    ("directus: too large", lambda: request("directus", {**DIRECTUS_EVENT, "pad": "a" * MAX_BODY}), 413),
    (
        "directus: a row too large",
        lambda: request("directus", {**DIRECTUS_EVENT, "payload": {"email": "a" * 150_000}}),
        413,
    ),
    ("clay: too large", lambda: request("clay", {**LEAD, "pad": "a" * MAX_BODY}), 413),
    ("loops-webhook: too large", lambda: request("loops-webhook", {**contact_created(), "pad": "a" * MAX_BODY}), 413),
    ("loops-contacts: too large", lambda: request("loops-contacts", {**LOOPS_CONTACT, "p": "a" * MAX_BODY}), 413),
    ("loops-events: too large", lambda: request("loops-events", {**LOOPS_EVENT, "p": "a" * MAX_BODY}), 413),
    ("directus: text/plain", lambda: request("directus", headers={"content-type": "text/plain"}), 415),
    ("clay: form", lambda: request("clay", headers={"content-type": "application/x-www-form-urlencoded"}), 415),
    ("loops-webhook: xml", lambda: request("loops-webhook", headers={"content-type": "application/xml"}), 415),
    ("loops-contacts: text", lambda: request("loops-contacts", headers={"content-type": "text/csv"}), 415),
    ("loops-events: text", lambda: request("loops-events", headers={"content-type": "text/html"}), 415),
    ("directus: no key", lambda: request("directus", {"event": "leads.items.create", "collection": "leads"}), 422),
    ("directus: another collection", lambda: request("directus", {**DIRECTUS_EVENT, "collection": "posts"}), 422),
    ("clay: no email", lambda: request("clay", {"icp_score": 90}), 422),
    ("clay: a score over 100", lambda: request("clay", {**LEAD, "icp_score": "101"}), 422),
    ("loops-contacts: no identity", lambda: request("loops-contacts", {"firstName": "A"}), 422),
    ("loops-events: no event name", lambda: request("loops-events", {"email": "a@b.co"}), 422),
]


@pytest.mark.parametrize(
    ("make", "status"), [(make, status) for _, make, status in REJECTED], ids=[r[0] for r in REJECTED]
)
def test_a_rejection_is_answered_as_documented(relay, make, status):
    assert relay(make())[0] == status


@pytest.mark.parametrize("method", ALLOWED_ELSEWHERE)
@pytest.mark.parametrize("route", ["directus", "clay", "loops-webhook", "loops-contacts", "loops-events"])
def test_any_other_method_is_a_405_that_names_post_as_documented(relay, route, method):
    status, headers, _ = relay(request(route, method=method))
    assert (status, headers["Allow"]) == (405, "POST")


NOT_CONFIGURED = {
    key: value
    for key, value in default_config().items()
    if key not in ("clay_callback", "loops_webhook", "loops_forwarding")
}


@pytest.mark.parametrize("route", ["clay", "loops-webhook", "loops-contacts", "loops-events"])
def test_a_route_relay_json_leaves_out_is_a_documented_404(relay, tmp_path, route):
    with configured(tmp_path, NOT_CONFIGURED):
        assert relay(request(route))[0] == 404


@pytest.mark.parametrize("route", ["directus", "clay", "loops-webhook", "loops-contacts", "loops-events"])
def test_a_relay_json_that_cannot_be_read_is_a_documented_503(relay, tmp_path, route):
    with configured(tmp_path, "{not json"):
        assert relay(request(route))[0] == 503


def test_every_status_the_relay_itself_answers_on_a_path_is_one_of_the_answers_above(relay, tmp_path):
    """Together, the requests above get every status each path documents (but API Gateway's own)."""
    answered: dict[str, set[int]] = {path: set() for path in CONTRACT["paths"]}

    def send(event: dict) -> None:
        answered[documented_path(event["rawPath"])].add(relay(event)[0])

    for route, body in ACCEPTED:
        send(request(route, body))
    for _, make, _ in REJECTED:
        send(make())
    for route in ROUTES:
        with configured(tmp_path, NOT_CONFIGURED):
            send(request(route))
        with configured(tmp_path, "{not json"):
            send(request(route))
    for path, item in CONTRACT["paths"].items():
        assert answered[path] == {int(status) for status in item["post"]["responses"] if status not in GATEWAY_ONLY}


# --- the request schemas and the sample events -------------------------------------------------------------
def documented_request_body(event: dict) -> bool:
    """Whether the event's body is valid for its route's request schema."""
    path = documented_path(event["rawPath"])
    pointer = f"{operation_pointer(path)}/requestBody/content/application~1json/schema"
    return schema_at(pointer).is_valid(json.loads(event["body"]))


SAMPLES = {
    # events/<file>: the relay accepts its body (whatever it says of the sample's credentials)
    "directus/create.json": True,
    "directus/update.json": True,
    "directus/delete.json": True,
    "directus/batch-update.json": True,
    "directus/bad-token.json": True,
    "clay/hot.json": True,
    "clay/outreach.json": True,
    "clay/nurture.json": True,
    "clay/skip.json": True,
    "clay/numbers-as-strings.json": True,
    "clay/bad-token.json": True,
    "clay/missing-email.json": False,
    "loops/contact-created.json": True,
    "loops/other-event.json": True,
    "loops/bad-signature.json": True,
    "loops/contact-from-clay.json": True,
    "loops/event-from-clay.json": True,
}


def test_every_sample_http_event_is_listed_here():
    found = {
        str(path.relative_to(ROOT / "events"))
        for path in (ROOT / "events").glob("*/*.json")
        if "rawPath" in json.loads(path.read_text(encoding="utf-8"))
    }
    assert found == {*SAMPLES, "directus/malformed.json"}


@pytest.mark.parametrize(("sample", "valid"), SAMPLES.items())
def test_the_request_schema_accepts_a_sample_event_exactly_when_the_relay_does(sample, valid):
    event = json.loads((ROOT / "events" / sample).read_text(encoding="utf-8"))
    assert event["requestContext"]["http"]["method"] == "POST"
    assert documented_request_body(event) is valid


def test_the_malformed_sample_is_no_json_as_its_documented_400_says():
    event = json.loads((ROOT / "events/directus/malformed.json").read_text(encoding="utf-8"))
    with pytest.raises(ValueError):
        json.loads(event["body"])


# --- the local stack serves it ----------------------------------------------------------------------------
@pytest.fixture
def gateway():
    server = Gateway([], {}, Sandboxes())
    yield server.start("127.0.0.1", 0)
    server.stop()


def test_the_local_stack_serves_the_contract_as_json_with_itself_as_server(gateway):
    answer = requests.get(f"{gateway}/_local/openapi.json", timeout=5)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.json() == {**CONTRACT, "servers": [{"url": gateway, "description": "this local stack"}]}


@pytest.mark.parametrize("method", ["TRACE", "CONNECT"])
def test_the_local_gateway_passes_trace_and_connect_on_instead_of_answering_501(gateway, method):
    answer = requests.request(method, f"{gateway}/no/such/route", timeout=5)
    assert (answer.status_code, answer.json()) == (404, {"message": "Not Found"})
