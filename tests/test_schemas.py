"""Property tests (Hypothesis) of the API's request models (rag.schemas): whatever JSON arrives,
validation accepts it or explains it, and the real server answers it, never with a 500."""
import json

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from rag import schemas

JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
ANY_JSON = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.text(max_size=12), inner, max_size=4), max_leaves=16)
DATES = st.dates().map(str) | st.text(max_size=12)
FILTERS = st.fixed_dictionaries({}, optional={
    "articles": st.lists(st.sampled_from(["ha-noi-la-habana-hop-tac", "thanh-uy-ha-noi-tham-argentina-peru"])
                         | st.text(max_size=30), max_size=3),
    "outlet": st.text(max_size=30), "since": DATES, "until": DATES}) | ANY_JSON
TURN = st.fixed_dictionaries({"question": st.text(max_size=60), "answer": st.text(max_size=60)}) | ANY_JSON
# Shaped like the request, with every field sometimes wrong; plus anything at all.
ASK_BODIES = st.fixed_dictionaries({"question": st.text(max_size=1100) | ANY_JSON}, optional={
    "history": st.lists(TURN, max_size=3) | ANY_JSON, "filters": FILTERS}) | ANY_JSON
FEEDBACK_BODIES = st.fixed_dictionaries({"question": st.text(max_size=200) | ANY_JSON,
                                         "answer": st.dictionaries(st.text(max_size=8), ANY_JSON, max_size=3) | ANY_JSON,
                                         "rating": st.sampled_from([1, -1, 0, 2]) | ANY_JSON},
                                        optional={"comment": st.text(max_size=100) | ANY_JSON}) | ANY_JSON


def validation(model, body) -> tuple[int, str, str] | None:
    """None when ``body`` is valid, else the status, code and message the API would send."""
    from pydantic import ValidationError

    try:
        model.model_validate(body)
    except ValidationError as exc:
        return schemas.explain(exc.errors())
    return None


@settings(max_examples=300, deadline=None)
@given(ASK_BODIES)
def test_any_json_is_accepted_or_explained_as_a_request_to_ask(body):
    explained = validation(schemas.AskRequest, body)
    if explained is not None:
        status, code, message = explained
        assert status in (400, 422) and code and message.strip()
    else:
        assert isinstance(body, dict) and isinstance(body["question"], str)
        assert len(body["question"]) <= schemas.MAX_QUESTION_CHARS


@settings(max_examples=300, deadline=None)
@given(FEEDBACK_BODIES)
def test_any_json_is_accepted_or_explained_as_feedback(body):
    explained = validation(schemas.FeedbackIn, body)
    if explained is not None:
        status, code, message = explained
        assert status in (400, 422) and code and message.strip()
    else:
        assert body["rating"] in (1, -1) and isinstance(body["answer"], (dict, str))  # the answer object, or its text


@pytest.fixture(scope="module")
def server(tmp_path_factory, seed_store, e5):
    from servers import LiveServer, loaded_service

    with loaded_service(tmp_path_factory.mktemp("schemas"), seed_store, e5, rate_limit=0) as service, \
            LiveServer(service.settings, service) as live:
        yield live


def post(server, path: str, body) -> tuple[int, dict, bytes]:
    from servers import http

    return http(server.url, "POST", path, json.dumps(body).encode(), {"Content-Type": "application/json"})


def assert_answered_or_refused_clearly(status: int, headers: dict, content: bytes) -> None:
    assert status < 500, content
    if status != 200:
        error = json.loads(content)
        assert status in (400, 404, 413, 422) and error["error"] and error["message"], (status, error)


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(body=ASK_BODIES)
def test_the_server_answers_any_json_question_without_a_server_error(server, body):
    status, headers, content = post(server, "/api/ask", body)
    assert_answered_or_refused_clearly(status, headers, content)
    if status == 200:
        assert json.loads(content)["answer"].strip()
    status, headers, content = post(server, "/api/ask/stream", body)
    assert_answered_or_refused_clearly(status, headers, content)
    if status == 200:
        assert b"event: final" in content and b"event: error" not in content


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(body=FEEDBACK_BODIES)
def test_the_server_takes_any_json_feedback_without_a_server_error(server, body):
    status, headers, content = post(server, "/api/feedback", body)
    assert_answered_or_refused_clearly(status, headers, content)
    if status == 200:
        assert json.loads(content)["id"] >= 1
