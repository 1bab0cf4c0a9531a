"""The resolver every relay function shares (clay_relay.http_api): a sender's route answers POST;
any other method on it is a 405 naming POST; a route whose relay.json section is absent is a 404
saying so, before the route runs; a receipt is answered as a 202 of its JSON."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

from clay_relay.http_api import ALLOWED_ELSEWHERE, OPTIONAL_SECTIONS, configured_section, receipt_response, relay_api
from clay_relay.runtime import get_runtime
from tests.invocations import LambdaContext


def http_event(path: str, method: str = "POST") -> dict:
    return {
        "version": "2.0",
        "routeKey": f"ANY {path}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json"},
        "requestContext": {"http": {"method": method, "path": path}, "stage": "$default"},
        "isBase64Encoded": False,
    }


class Noted(BaseModel):
    accepted: bool = True
    note: str | None = None
    event_id: str | None = None


@pytest.fixture
def app():
    """A resolver with one route that needs `clay_callback` and one that needs nothing."""
    app = relay_api()
    app.calls = []

    @app.receiver("/needs/section", section="clay_callback")
    def needs_section() -> object:
        app.calls.append("needs_section")
        return receipt_response(Noted(note="ran"))

    @app.receiver("/things/<name>")
    def thing(name: str) -> object:
        app.calls.append(name)
        return receipt_response(Noted())

    @app.receiver("/events/<event_id>")
    def event(event_id: str) -> object:
        return receipt_response(Noted(event_id=event_id))

    return app


def answer(app, path: str, method: str = "POST") -> tuple[int, dict, dict]:
    response = app.resolve(http_event(path, method), LambdaContext())
    return response["statusCode"], response["headers"], json.loads(response["body"])


def test_a_receiver_answers_its_post_with_the_receipt_as_a_202_without_unset_fields(function_env, use_config, app):
    use_config()
    assert answer(app, "/things/a") == (202, {"Content-Type": "application/json"}, {"accepted": True})
    assert answer(app, "/needs/section")[2] == {"accepted": True, "note": "ran"}
    assert app.calls == ["a", "needs_section"]


def test_a_receipt_with_an_event_id_answers_it_in_x_relay_event_id_too(function_env, use_config, app):
    """The id to follow the request by in the worker's logs, the destination's and `relay trace`,
    whatever the tracing mode."""
    use_config()
    status, headers, body = answer(app, "/events/0123456789abcdef0123456789abcdef")
    assert status == 202
    assert headers["X-Relay-Event-Id"] == body["event_id"] == "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize("method", ALLOWED_ELSEWHERE)
def test_any_other_method_on_a_receiver_is_a_405_naming_post_and_the_route_never_runs(app, method):
    status, headers, body = answer(app, "/things/a", method)
    assert (status, headers["Allow"]) == (405, "POST")
    assert body == {"error": "method_not_allowed", "message": "use POST"}
    assert answer(app, "/needs/section", method)[0] == 405  # before the configuration is read
    assert app.calls == []


def test_a_path_no_receiver_serves_is_a_404(app):
    assert answer(app, "/nothing/here") == (
        404,
        {"Content-Type": "application/json"},
        {"error": "not_found", "message": "no such route"},
    )


def test_a_route_whose_section_is_absent_is_a_404_that_names_the_section_and_never_runs(function_env, use_config, app):
    use_config(lambda config: config.pop("clay_callback"))
    status, _, body = answer(app, "/needs/section")
    assert (status, body) == (
        404,
        {"error": "not_found", "message": "the Clay callback is not configured (relay.json has no clay_callback)"},
    )
    assert app.calls == []


@pytest.mark.parametrize("section", OPTIONAL_SECTIONS)
def test_a_use_case_gets_its_section_or_the_same_404(function_env, use_config, section):
    use_config()
    assert configured_section(get_runtime().config, section) is getattr(get_runtime().config, section)
    use_config(lambda config: config.pop(section))
    with pytest.raises(Exception, match=rf"is not configured \(relay.json has no {section}\)") as absent:
        configured_section(get_runtime().config, section)
    assert absent.value.status == 404
