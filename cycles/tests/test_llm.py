"""LLM providers: the offline heuristics, the answer schema, and the real providers against a fake server."""
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.exceptions import ImproperlyConfigured

from conftest import REPORT_FIELDS
from cycles.llm import (
    AttributeDraft,
    LLMBadResponseError,
    LLMTransientError,
    build_prompt,
    get_provider,
    parse_attribute_drafts,
)
from cycles.llm.anthropic_provider import AnthropicProvider
from cycles.llm.offline import OfflineProvider
from cycles.llm.openai_provider import OpenAIProvider

FIELD_NAMES = [f["name"] for f in REPORT_FIELDS]


def good_answer(names=FIELD_NAMES, **overrides):
    items = []
    for index, name in enumerate(names):
        item = {
            "name": name,
            "description": f"About {name}",
            "data_type": "string",
            "mandatory": index == 0,
            "primary_key": index == 0,
            "cde": False,
            "historical_issues": False,
            "risk_score": 3,
        }
        item.update(overrides.get(name, {}))
        items.append(item)
    return {"attributes": items}


# --- offline provider -------------------------------------------------------------------------


def offline_draft(fields):
    return OfflineProvider().draft_attributes(report_name="FR Y-14Q Retail", regulation="FR Y-14Q", fields=fields)


def test_offline_is_deterministic():
    first = offline_draft(REPORT_FIELDS)
    second = offline_draft(json.loads(json.dumps(REPORT_FIELDS)))
    assert first == second
    assert [d.name for d in first] == FIELD_NAMES


def test_offline_heuristics_on_the_report_fields():
    drafts = {d.name: d for d in offline_draft(REPORT_FIELDS)}

    account = drafts["account_id"]
    assert (account.primary_key, account.mandatory, account.data_type) == (True, True, "string")

    balance = drafts["balance"]
    assert (balance.data_type, balance.cde, balance.mandatory) == ("decimal", True, True)
    assert balance.description == "Outstanding balance in USD"

    assert drafts["origination_date"].data_type == "date"
    assert drafts["is_delinquent"].data_type == "boolean"

    name = drafts["customer_name"]
    assert (name.data_type, name.primary_key, name.cde) == ("string", False, False)
    assert balance.risk_score > name.risk_score
    assert account.risk_score > name.risk_score
    assert all(1 <= d.risk_score <= 10 for d in drafts.values())
    assert not any(d.historical_issues for d in drafts.values())


@pytest.mark.parametrize(
    "name, description, data_type, primary_key",
    [
        ("id", "", "string", True),
        ("loan_id", "Numeric surrogate key", "integer", True),
        ("AccountNumber", "", "string", True),
        ("maturity_dt", "", "date", False),
        ("interest_rate", "", "decimal", False),
        ("principal_amt", "", "decimal", False),
        ("has_collateral", "", "boolean", False),
        ("default_flag", "", "boolean", False),
        ("days_past_due", "", "integer", False),
        ("branch_city", "City of the branch", "string", False),
    ],
)
def test_offline_heuristics_by_name(name, description, data_type, primary_key):
    (draft,) = offline_draft([{"name": name, "description": description}])
    assert (draft.data_type, draft.primary_key) == (data_type, primary_key)
    if primary_key:
        assert draft.mandatory


def test_offline_description_generated_from_the_name_when_missing():
    (draft,) = offline_draft([{"name": "branch_city"}])
    assert draft.description == "Branch city as reported in FR Y-14Q Retail."


def test_offline_amounts_are_cde_with_higher_risk():
    drafts = {d.name: d for d in offline_draft([{"name": "exposure_amount"}, {"name": "branch_city"}])}
    assert drafts["exposure_amount"].cde
    assert drafts["exposure_amount"].risk_score >= 7
    assert drafts["branch_city"].risk_score <= 3


# --- schema -----------------------------------------------------------------------------------


def test_parse_accepts_fenced_json_and_keeps_field_order():
    answer = good_answer(list(reversed(FIELD_NAMES)))
    text = "Here you are:\n```json\n" + json.dumps(answer) + "\n```\nAnything else?"
    drafts = parse_attribute_drafts(text, FIELD_NAMES)
    assert [d.name for d in drafts] == FIELD_NAMES
    assert drafts[0] == AttributeDraft(
        name="account_id", description="About account_id", data_type="string", mandatory=False,
        primary_key=False, cde=False, historical_issues=False, risk_score=3,
    )


def test_parse_accepts_a_bare_list_and_fills_optional_flags():
    items = [{"name": n, "data_type": "date", "risk_score": 10} for n in FIELD_NAMES]
    drafts = parse_attribute_drafts(json.dumps(items), FIELD_NAMES)
    assert all(d.data_type == "date" and d.risk_score == 10 and not d.cde for d in drafts)
    assert all(d.description == "" for d in drafts)


@pytest.mark.parametrize(
    "answer, message",
    [
        ("I'm sorry, I can't help with that.", "not JSON"),
        ("", "not JSON"),
        ('{"fields": []}', 'no "attributes"'),
        (json.dumps(good_answer(FIELD_NAMES[:-1])), "missing is_delinquent"),
        (json.dumps(good_answer([*FIELD_NAMES, "branch"])), "not in the report branch"),
        (json.dumps(good_answer([*FIELD_NAMES, "balance"])), "repeated balance"),
        (json.dumps(good_answer(balance={"data_type": "float"})), "'float' is not one of"),
        (json.dumps(good_answer(balance={"risk_score": 11})), "(balance).risk_score"),
        (json.dumps(good_answer(balance={"risk_score": 0})), "greater than or equal to 1"),
        (json.dumps(good_answer(balance={"risk_score": "high"})), "risk_score"),
        (json.dumps(good_answer(balance={"cde": "yes"})), "(balance).cde: Must be true or false"),
        (json.dumps(good_answer(balance={"risk_score": None})), "risk_score"),
        ('{"attributes": {"name": "balance"}}', "Expected a list"),
    ],
)
def test_parse_rejects_bad_answers(answer, message):
    with pytest.raises(LLMBadResponseError) as excinfo:
        parse_attribute_drafts(answer, FIELD_NAMES)
    assert message in str(excinfo.value)


def test_parse_rejects_missing_required_key():
    answer = good_answer()
    del answer["attributes"][2]["data_type"]
    with pytest.raises(LLMBadResponseError, match=r"attributes\[2\] \(balance\)\.data_type: This field is required"):
        parse_attribute_drafts(answer, FIELD_NAMES)


def test_prompt_lists_every_field_and_asks_for_the_json_object():
    system, prompt = build_prompt(report_name="FR Y-14Q Retail", regulation="FR Y-14Q", fields=REPORT_FIELDS)
    assert "JSON" in system
    assert '{"attributes": [' in prompt
    for field in REPORT_FIELDS:
        assert json.dumps(field["name"]) in prompt
        assert field["description"] in prompt


# --- get_provider -----------------------------------------------------------------------------


def test_get_provider_defaults_to_offline(settings):
    settings.LLM_PROVIDER = "offline"
    assert get_provider().name == "offline"


def test_get_provider_unknown_name(settings):
    settings.LLM_PROVIDER = "gemini"
    with pytest.raises(ImproperlyConfigured, match="'gemini' is not a provider"):
        get_provider()


@pytest.mark.parametrize("name", ["anthropic", "openai"])
def test_get_provider_real_provider_needs_a_key(settings, name):
    settings.LLM_PROVIDER = name
    settings.LLM_API_KEY = ""
    with pytest.raises(ImproperlyConfigured, match="needs LLM_API_KEY"):
        get_provider()


def test_get_provider_defaults_per_provider(settings):
    settings.LLM_API_KEY = "k"
    settings.LLM_BASE_URL = ""
    settings.LLM_MODEL = ""
    settings.LLM_PROVIDER = "anthropic"
    anthropic = get_provider()
    settings.LLM_PROVIDER = "openai"
    openai = get_provider()
    assert isinstance(anthropic, AnthropicProvider) and anthropic.base_url == "https://api.anthropic.com"
    assert isinstance(openai, OpenAIProvider) and openai.base_url == "https://api.openai.com/v1"
    assert anthropic.model and openai.model
    settings.LLM_MODEL = "my-local-model"
    settings.LLM_BASE_URL = "http://127.0.0.1:11434/v1/"
    local = get_provider()
    assert (local.model, local.base_url) == ("my-local-model", "http://127.0.0.1:11434/v1")


# --- real providers against a fake server -----------------------------------------------------


class FakeLLMServer:
    """A local HTTP server that records requests and plays back queued (status, body) answers."""

    def __init__(self):
        self.requests = []
        self.answers = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                server.requests.append(
                    {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                     "body": json.loads(raw or b"null")}
                )
                status, body = server.answers.pop(0)
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def fake_server():
    with FakeLLMServer() as server:
        yield server


def anthropic_body(text):
    return {"id": "msg_1", "type": "message", "role": "assistant", "stop_reason": "end_turn",
            "content": [{"type": "text", "text": text}]}


def openai_body(text):
    return {"id": "chatcmpl-1", "object": "chat.completion",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}]}


PROVIDERS = {
    "anthropic": {"path": "/v1/messages", "body": anthropic_body},
    "openai": {"path": "/chat/completions", "body": openai_body},
}


@pytest.fixture
def configure(settings, fake_server):
    def configure(name):
        settings.LLM_PROVIDER = name
        settings.LLM_API_KEY = "sk-test-123"
        settings.LLM_BASE_URL = fake_server.url
        settings.LLM_MODEL = "test-model"
        settings.LLM_TIMEOUT = 10.0
        return get_provider()

    return configure


def draft(provider, fields=REPORT_FIELDS):
    return provider.draft_attributes(report_name="FR Y-14Q Retail", regulation="FR Y-14Q", fields=fields)


def test_anthropic_request_and_answer(configure, fake_server):
    provider = configure("anthropic")
    answer = good_answer(balance={"data_type": "decimal", "cde": True, "risk_score": 8})
    fake_server.answers.append((200, anthropic_body("```json\n" + json.dumps(answer) + "\n```")))

    drafts = draft(provider)

    (request,) = fake_server.requests
    assert request["path"] == "/v1/messages"
    assert request["headers"]["x-api-key"] == "sk-test-123"
    assert request["headers"]["anthropic-version"] == "2023-06-01"
    assert request["headers"]["content-type"] == "application/json"
    body = request["body"]
    assert body["model"] == "test-model"
    assert body["max_tokens"] > 0
    assert "JSON" in body["system"]
    assert body["messages"][0]["role"] == "user"
    assert "origination_date" in body["messages"][0]["content"]
    assert [d.name for d in drafts] == FIELD_NAMES
    balance = drafts[2]
    assert (balance.data_type, balance.cde, balance.risk_score) == ("decimal", True, 8)


def test_openai_request_and_answer(configure, fake_server):
    provider = configure("openai")
    answer = good_answer(origination_date={"data_type": "date", "historical_issues": True})
    fake_server.answers.append((200, openai_body(json.dumps(answer))))

    drafts = draft(provider)

    (request,) = fake_server.requests
    assert request["path"] == "/chat/completions"
    assert request["headers"]["authorization"] == "Bearer sk-test-123"
    body = request["body"]
    assert body["model"] == "test-model"
    assert body["response_format"] == {"type": "json_object"}
    assert body["temperature"] == 0
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert "is_delinquent" in body["messages"][1]["content"]
    origination = drafts[3]
    assert (origination.name, origination.data_type, origination.historical_issues) == (
        "origination_date", "date", True)


@pytest.mark.parametrize("name", ["anthropic", "openai"])
def test_server_error_is_transient(configure, fake_server, name):
    provider = configure(name)
    fake_server.answers.append((500, {"error": {"message": "internal"}}))
    with pytest.raises(LLMTransientError, match="HTTP 500"):
        draft(provider)


@pytest.mark.parametrize("name", ["anthropic", "openai"])
def test_rate_limit_is_transient(configure, fake_server, name):
    provider = configure(name)
    fake_server.answers.append((429, {"error": {"message": "slow down"}}))
    with pytest.raises(LLMTransientError, match="slow down"):
        draft(provider)


@pytest.mark.parametrize("name", ["anthropic", "openai"])
def test_unauthorized_is_a_bad_response(configure, fake_server, name):
    provider = configure(name)
    fake_server.answers.append((401, {"type": "error", "error": {"type": "authentication_error",
                                                                 "message": "invalid x-api-key"}}))
    with pytest.raises(LLMBadResponseError, match="HTTP 401: invalid x-api-key"):
        draft(provider)


@pytest.mark.parametrize("name", ["anthropic", "openai"])
def test_garbage_answer_is_a_bad_response(configure, fake_server, name):
    provider = configure(name)
    fake_server.answers.append((200, PROVIDERS[name]["body"]("Sure! The attributes are account_id and balance.")))
    with pytest.raises(LLMBadResponseError, match="not JSON"):
        draft(provider)


@pytest.mark.parametrize("name", ["anthropic", "openai"])
def test_non_json_http_body_is_a_bad_response(configure, fake_server, name):
    provider = configure(name)
    fake_server.answers.append((200, b"<html>proxy login</html>"))
    with pytest.raises(LLMBadResponseError, match="not JSON"):
        draft(provider)


@pytest.mark.parametrize("name", ["anthropic", "openai"])
def test_answer_without_text_is_a_bad_response(configure, fake_server, name):
    provider = configure(name)
    fake_server.answers.append((200, {"content": [], "choices": []}))
    with pytest.raises(LLMBadResponseError, match="no"):
        draft(provider)


@pytest.mark.parametrize("name", ["anthropic", "openai"])
def test_unreachable_server_is_transient(settings, name):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens on the port once the socket is closed: the connection is refused.
    settings.LLM_PROVIDER = name
    settings.LLM_API_KEY = "k"
    settings.LLM_BASE_URL = f"http://127.0.0.1:{port}"
    with pytest.raises(LLMTransientError, match="could not reach"):
        draft(get_provider())


def test_large_field_lists_go_in_batches(configure, fake_server):
    provider = configure("openai")
    provider.batch_size = 3
    fake_server.answers.append((200, openai_body(json.dumps(good_answer(FIELD_NAMES[:3])))))
    fake_server.answers.append((200, openai_body(json.dumps(good_answer(FIELD_NAMES[3:])))))

    drafts = draft(provider)

    assert [d.name for d in drafts] == FIELD_NAMES
    first, second = (r["body"]["messages"][1]["content"] for r in fake_server.requests)
    assert '"balance"' in first and '"is_delinquent"' not in first
    assert '"is_delinquent"' in second and '"balance"' not in second


def test_no_fields_means_no_request(configure, fake_server):
    provider = configure("anthropic")
    assert draft(provider, fields=[]) == []
    assert fake_server.requests == []
