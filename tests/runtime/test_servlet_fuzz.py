"""Fuzzing the Interact-compatible servlet: whatever is posted gets an HTTP answer, never a
5xx. A JSON object is a batch: one response per command, each as Interact shapes it, a
malformed command answered with statusCode 2 and a message saying what is wrong, and the
good commands of the same batch still run. A body that is not a JSON object (or whose
`commands` is not a list) is refused with a 400 problem+json (docs/runtime.md).

No command may end in msgCode 99 (an unexpected failure, logged): every mistake a client
can make has a message of its own.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from overture.catalog import load_catalog
from overture.catalog.model import event_name_problem
from overture.demo import CATALOG_PATH
from overture.runtime import servlet
from tests.runtime.test_servlet import SERVLET, START

FUZZ = settings(  # as many examples as the profile says (tests/conftest.py)
    deadline=None,
    # one node (and database) per test, shared by its examples: each uses a session of its own
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

ACTIONS = {name.lower() for name in servlet._NAMES}
NEEDS_SESSION = [n for n in servlet._NAMES if n not in ("startSession", "getVersion")]
PLACEMENTS = {p.name.lower() for p in load_catalog(CATALOG_PATH).placements}
RESPONSE_KEYS = {"sessionId", "statusCode", "version", "offerLists", "profile", "messages"}

GET_OFFERS = {"action": "getOffers", "ip": "web_home_hero", "numberRequested": 1}
GET_PROFILE = {"action": "getProfile"}

# -- JSON of any shape -----------------------------------------------------------------
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(-(10**60), 10**60),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(["", "\x00", "a\x00b", "1e400", "inf", "NaN", "-1", "0", "Web", "Customer"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=15,
)
# fields besides the ones that make a command wrong (not sessionId: a command's sessionId
# is the batch's from then on, which would move the good commands to another session)
extra_fields = st.dictionaries(
    st.text(max_size=10).filter(lambda k: k not in ("sessionId", "action")), json_values, max_size=3
)
command_like = st.builds(
    lambda action, fields: {**fields, "action": action},
    st.sampled_from([*servlet._NAMES, "fly", ""]) | json_values,
    st.dictionaries(
        st.sampled_from(
            [
                *("sessionId", "ic", "ip", "numberRequested", "audienceLevel", "audienceID"),
                *("parameters", "event", "getOfferRequests", "relyOnExistingSession", "debug"),
            ]
        ),
        json_values,
    ),
)
batches = st.fixed_dictionaries(
    {"commands": st.lists(command_like | json_values, max_size=5)},
    optional={"sessionId": json_values},
)


# -- commands that are wrong in one way each ------------------------------------------------
def _with(strategy: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """A wrong command with some irrelevant fields of any shape too."""
    return st.builds(lambda extra, cmd: {**extra, **cmd}, extra_fields, strategy)


def _number_ok(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return False
    try:
        return int(float(value)) >= 1
    except (ValueError, OverflowError):
        return False


bad_numbers = st.one_of(
    st.sampled_from([None, True, "inf", "-inf", "nan", "1e400", "0.5", "", "abc", "1" * 400]),
    st.integers(max_value=0),
    st.floats(max_value=0.99, allow_nan=False, allow_infinity=False),
    json_values.filter(lambda v: not _number_ok(v)),
)
bad_ips = st.sampled_from(["app_home_card", "cc_next_best_action", "nowhere", ""]) | (
    json_values.filter(lambda ip: str(ip or "").lower() not in PLACEMENTS)
)
bad_pairs = st.one_of(
    scalars,
    st.lists(scalars, max_size=2),
    st.fixed_dictionaries({"v": json_values}),
    st.fixed_dictionaries({"n": json_values.filter(lambda n: not isinstance(n, str))}),
    st.fixed_dictionaries(
        {
            "n": st.text(max_size=5),
            "v": st.sampled_from(["abc", "1.2.3", "", "inf", "NaN"]),
            "t": st.sampled_from(["numeric", "NUMERIC"]),
        }
    ),
    st.fixed_dictionaries(
        {
            "n": st.text(max_size=5),
            "v": st.sampled_from([1e300, -1e300, 10**30]),
            "t": st.just("datetime"),
        }
    ),
)
good_pairs = st.fixed_dictionaries(
    {"n": st.text(max_size=5), "v": st.text(max_size=5), "t": st.just("string")}
)
bad_pair_lists = st.builds(
    lambda before, bad, after: [*before, bad, *after],
    st.lists(good_pairs, max_size=2),
    bad_pairs,
    st.lists(good_pairs, max_size=2),
)
not_lists = json_values.filter(lambda v: bool(v) and not isinstance(v, list))
bad_audience_ids = st.one_of(
    not_lists,
    bad_pair_lists,
    st.just([{"n": "CustomerID", "v": "C" * 129, "t": "string"}]),
)
good_requests = st.fixed_dictionaries(
    {
        "ip": st.sampled_from(["web_home_hero", "WEB_ACCOUNT_SIDEBAR"]),
        "numberRequested": st.just(1),
    },
    optional={"dupPolicy": json_values},
)
bad_requests = st.one_of(
    json_values.filter(lambda v: not isinstance(v, dict)),
    st.fixed_dictionaries({"ip": bad_ips}),
    st.fixed_dictionaries({"ip": st.just("web_home_hero"), "numberRequested": bad_numbers}),
)

bad_commands = st.one_of(
    # an unknown action (or none)
    _with(
        st.fixed_dictionaries(
            {"action": json_values.filter(lambda a: str(a).lower() not in ACTIONS)}
        )
    ),
    # no session to act on (startSession makes one up)
    _with(
        st.fixed_dictionaries(
            {
                "action": st.sampled_from(NEEDS_SESSION),
                "sessionId": st.sampled_from([None, ""]),
            }
        )
    ),
    st.fixed_dictionaries({"action": st.just("getOffers"), "ip": bad_ips}),
    st.fixed_dictionaries(
        {
            "action": st.just("getOffers"),
            "ip": st.just("web_home_hero"),
            "numberRequested": bad_numbers,
        }
    ),
    st.fixed_dictionaries(
        {
            "action": st.just("getOffersForMultipleInteractionPoints"),
            "getOfferRequests": st.one_of(
                json_values.filter(lambda v: not (isinstance(v, list) and v)),
                st.builds(
                    lambda before, bad, after: [*before, bad, *after],
                    st.lists(good_requests, max_size=2),
                    bad_requests,
                    st.lists(good_requests, max_size=2),
                ),
            ),
        }
    ),
    st.fixed_dictionaries({"action": st.just("setAudience"), "audienceID": bad_audience_ids}),
    st.fixed_dictionaries(
        {
            "action": st.just("setAudience"),
            "audienceLevel": json_values.filter(
                lambda v: v not in (None, "") and str(v).lower() != "customer"
            ),
        }
    ),
    st.fixed_dictionaries(
        {"action": st.just("startSession"), "ic": st.just("Web"), "audienceID": bad_audience_ids}
    ),
    st.fixed_dictionaries(
        {
            "action": st.just("postEvent"),
            "event": st.just("Contact"),
            "parameters": not_lists | bad_pair_lists,
        }
    ),
    st.fixed_dictionaries(
        {
            "action": st.just("postEvent"),
            "event": json_values.filter(
                lambda v: not (isinstance(v, str) and event_name_problem(v) is None)
            ),
        }
    ),
    # a tracking code no decision returned
    st.fixed_dictionaries(
        {
            "action": st.just("postEvent"),
            "event": st.sampled_from(["Accept", "Reject", "Contact"]),
            "parameters": st.builds(
                lambda code: [{"n": "UACIOfferTrackingCode", "v": code, "t": "string"}],
                st.text(min_size=1) | st.integers() | st.just("x" * 65),
            ),
        }
    ),
    # a NUL anywhere, or a session id longer than any
    st.fixed_dictionaries(
        {
            "action": st.sampled_from(["getVersion", "getOffers"]),
            "ip": st.just("web_home_hero"),
            "note": st.text(max_size=5).map(lambda t: f"{t}\x00"),
        }
    ),
    st.fixed_dictionaries(
        {"action": st.just("getProfile"), "sessionId": st.text(min_size=129, max_size=200)}
    ),
)


# -- the tests ----------------------------------------------------------------------------
@FUZZ
@given(body=json_values | batches)
def test_any_json_is_answered_command_by_command(api: TestClient, body: Any) -> None:
    answer = _post(api, msgspec.json.encode(body))
    commands = body.get("commands") if isinstance(body, dict) else None
    if not isinstance(body, dict) or not isinstance(commands, (list, type(None))):
        _assert_refused(answer)
        return
    assert answer.status_code == 200, answer.text
    single = 1 if "action" in body else 0  # a body that is one command
    _assert_batch(answer.json(), len(commands) if isinstance(commands, list) else single)


@FUZZ
@given(body=st.binary(max_size=300) | st.text(max_size=100).map(str.encode))
def test_any_bytes_are_answered(api: TestClient, body: bytes) -> None:
    answer = _post(api, body)
    if answer.status_code == 200:  # a JSON object after all
        reply = answer.json()
        _assert_batch(reply, len(reply["responses"]))
    else:
        _assert_refused(answer)


@FUZZ
@given(
    before=st.lists(bad_commands, max_size=2),
    between=st.lists(bad_commands, min_size=1, max_size=3),
    after=st.lists(bad_commands, max_size=2),
)
def test_bad_commands_are_errors_and_the_good_ones_still_run(
    api: TestClient,
    before: list[dict[str, Any]],
    between: list[dict[str, Any]],
    after: list[dict[str, Any]],
) -> None:
    good = [START, GET_OFFERS, GET_PROFILE]
    commands = [*before, START, *between, GET_OFFERS, GET_PROFILE, *after]
    reply = _batch(api, commands)
    _assert_batch(reply, len(commands))
    assert reply["batchStatusCode"] == 2
    for command, response in zip(commands, reply["responses"], strict=True):
        if any(command is g for g in good):
            assert response["statusCode"] == 0, (command, response)
        else:
            assert response["statusCode"] == 2, (command, response)
            assert any(m["msgLevel"] == 2 for m in response["messages"]), (command, response)
    offers, profile = reply["responses"][len(before) + 1 + len(between) :][:2]
    assert [x["ip"] for x in offers["offerLists"]] == ["web_home_hero"]
    values = {p["n"]: p["v"] for p in profile["profile"]}
    assert values["customer_id"] == "C0000042" and values["device"] == "mobile"


# Bodies only raw JSON can hold: numbers beyond a float's range, beyond Python's integers,
# and nesting deeper than the decoder goes.
HUGE = b"1e400"
HUGE_BATCH = b"""{"sessionId": "%s", "commands": [
  %s,
  {"action": "getOffers", "ip": "web_home_hero", "numberRequested": 1e400},
  {"action": "getOffers", "ip": "web_home_hero", "numberRequested": -1e400},
  {"action": "postEvent", "event": "Contact", "parameters": [{"n": "x", "v": 1e400}]},
  {"action": "postEvent", "event": "Contact",
   "parameters": [{"n": "x", "v": "1e400", "t": "numeric"}]},
  {"action": "setAudience", "audienceID": [{"n": "CustomerID", "v": -1e400}]},
  {"action": "getOffers", "ip": "web_home_hero", "numberRequested": 1e300},
  {"action": "getVersion", "why": [123456789012345678901234567890123456789, 1e-400]}
]}"""


def test_numbers_beyond_range_are_errors_of_their_commands(api: TestClient) -> None:
    session = f"fuzz-{uuid.uuid4().hex}"
    answer = _post(api, HUGE_BATCH % (session.encode(), msgspec.json.encode(START)))
    assert answer.status_code == 200, answer.text
    reply = answer.json()
    _assert_batch(reply, 8)
    statuses = [r["statusCode"] for r in reply["responses"]]
    assert statuses == [0, 2, 2, 2, 2, 2, 0, 0]
    codes = [r["messages"][0]["msgCode"] for r in reply["responses"][1:6]]
    assert codes == [servlet.BAD_NUMBER_REQUESTED] * 2 + [servlet.BAD_COMMAND] * 3
    assert len(reply["responses"][6]["offerLists"][0]["offers"]) == 1


NO_BATCH = {
    "int-beyond-python": b'{"commands": [{"action": "getVersion", "n": ' + b"7" * 5000 + b"}]}",
    "nested-too-deep": b'{"commands": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}",
    "commands-not-a-list": b'{"sessionId": "s", "commands": {"action": "getVersion"}}',
    "array": b"[]",
    "string": b'"startSession"',
    "empty": b"",
    "not-utf8": b"\xff\xfe{}",
    "nan": b'{"commands": [], "x": NaN}',
}


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)  # they reach no database
def test_bodies_that_are_no_batch_are_refused(api: TestClient) -> None:
    for name, body in NO_BATCH.items():
        answer = api.post(SERVLET, content=body)
        assert answer.status_code == 400, (name, answer.text)
        _assert_refused(answer)


def test_deep_but_decodable_nesting_is_answered(api: TestClient) -> None:
    """Nesting the decoder takes, in a parameter: stored or refused, never a failure."""
    nested = b"[" * 800 + b"]" * 800
    commands = (
        b'[%s, {"action": "postEvent", "event": "Wave", "parameters": [{"n": "x", "v": %s}]}]'
    )
    body = b'{"sessionId": "%s", "commands": %s}' % (
        f"fuzz-{uuid.uuid4().hex}".encode(),
        commands % (msgspec.json.encode(START), nested),
    )
    answer = _post(api, body)
    assert answer.status_code in (200, 400), answer.text
    if answer.status_code == 200:
        _assert_batch(answer.json(), 2)
    else:
        _assert_refused(answer)


# -- helpers ------------------------------------------------------------------------------
def _post(api: TestClient, body: bytes) -> Any:
    answer = api.post(SERVLET, content=body, headers={"content-type": "application/json"})
    assert answer.status_code < 500, answer.text
    return answer


def _batch(api: TestClient, commands: list[Any]) -> Any:
    body = {"sessionId": f"fuzz-{uuid.uuid4().hex}", "commands": commands}
    answer = _post(api, msgspec.json.encode(body))
    assert answer.status_code == 200, answer.text
    return answer.json()


def _assert_refused(answer: Any) -> None:
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["status"] == 400 and "commands" in problem["detail"], problem


def _assert_batch(reply: Any, commands: int) -> None:
    """Interact's shape: one response per command, statusCode its highest message level
    (an error for a message of level 2), batchStatusCode the highest; no message 99."""
    assert set(reply) == {"batchStatusCode", "responses"}, reply
    assert len(reply["responses"]) == commands, reply
    for response in reply["responses"]:
        assert set(response) == RESPONSE_KEYS, response
        levels = [m["msgLevel"] for m in response["messages"]]
        assert response["statusCode"] == max(levels, default=0), response
        for message in response["messages"]:
            assert message["msgLevel"] in (0, 1, 2), response
            assert isinstance(message["msg"], str) and message["msg"], response
            assert message["msgCode"] != servlet.INTERNAL, response
    statuses = [r["statusCode"] for r in reply["responses"]]
    assert reply["batchStatusCode"] == max(statuses, default=0), reply
