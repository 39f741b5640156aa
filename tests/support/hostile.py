"""Hostile requests for the serving routes, as Hypothesis strategies: JSON of every shape (near
misses of the real bodies among them), bytes that are not JSON at all, the named nasties (deep
nesting, huge numbers, invalid UTF-8, duplicate keys, NaN, bodies over the limit), and headers
with right, wrong and non-ASCII keys, tokens, variants and content types."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pandas as pd
from hypothesis import event
from hypothesis import strategies as st

from tests.conftest import ROOT

ADMIN, API_KEY = "hostile-admin-token", "hostile-api-key"
ROUTES = [
    ("POST", "/predict"),
    ("POST", "/feedback"),
    ("POST", "/admin/reload"),
    ("PUT", "/admin/traffic"),
]
FEATURES = list(pd.read_csv(ROOT / "data/wine/winequality-white.csv", sep=";", nrows=1).columns)
FEATURES.remove("quality")

NASTY_BODIES = [
    b"[" * 5_000 + b"]" * 5_000,
    b'{"record": ' * 2_000 + b"{}" + b"}" * 2_000,
    b'{"record": {"alcohol": ' + b"9" * 5_000 + b"}}",
    b'{"record": {"alcohol": 1e999999}}',
    b'{"record": {"alcohol": -Infinity}}',
    b'{"record": {"alcohol": NaN}, "record": {"alcohol": 1}}',
    b'{"record": {"alcohol": "\xff"}}',
    b'{"record_id": "\\udc00", "value": 1}',
    b'{"staging_weight": 1e400}',
    b"\xef\xbb\xbf{}",  # a byte-order mark
    b"\x00" * 64,
    b"x" * 2_100_000,  # over serving.max_body_bytes
]
# latin-1 is what HTTP headers carry; no control characters (a client library refuses those)
HEADER_TEXT = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=20,
)
CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "application/json; charset=latin-1",
    "application/vnd.api+json",
    "text/plain",
    "text/json",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=xyz",
    "application/octet-stream",
]

LEAF = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats()  # NaN and infinities too: written as NaN / Infinity literals
    | st.floats(min_value=0, max_value=20)  # plausible feature values
    | st.text(max_size=12)
)
JSON = st.recursive(
    LEAF,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
RECORD = st.fixed_dictionaries(
    {}, optional={name: LEAF for name in [*FEATURES, "client_id", "extra"]}
)


def good_record() -> dict[str, float]:
    return dict.fromkeys(FEATURES, 1.0)


VALID_RECORD = st.lists(
    st.floats(min_value=0, max_value=400), min_size=len(FEATURES), max_size=len(FEATURES)
).map(lambda values: dict(zip(FEATURES, values, strict=True)))
PLAUSIBLE = {
    "/predict": st.one_of(
        st.builds(lambda r: {"record": r}, VALID_RECORD),
        st.builds(lambda rs: {"records": rs}, st.lists(VALID_RECORD, min_size=1, max_size=20)),
        st.builds(lambda r: {"record": r}, RECORD),
        st.builds(lambda r: {"record": {**good_record(), **r}}, RECORD),
        st.builds(lambda rs: {"records": rs}, st.lists(RECORD, max_size=4)),
        st.dictionaries(st.sampled_from(["record", "records", "client_id", "x"]), JSON, max_size=3),
    ),
    "/feedback": st.fixed_dictionaries(
        {
            "record_id": st.text(st.characters(min_codepoint=0x20), min_size=1, max_size=64),
            "value": st.integers(3, 9) | st.text(max_size=5),
        }
    )
    | st.fixed_dictionaries(
        {}, optional={"record_id": st.text(max_size=70) | LEAF, "value": JSON, "x": LEAF}
    ),
    "/admin/reload": JSON,
    "/admin/traffic": st.fixed_dictionaries(
        {"staging_weight": st.floats(min_value=0, max_value=1)}, optional={"shadow": st.booleans()}
    )
    | st.fixed_dictionaries(
        {},
        optional={
            "staging_weight": LEAF | st.floats(min_value=0, max_value=1),
            "shadow": LEAF,
            "x": LEAF,
        },
    ),
}


@dataclass
class HostileRequest:
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:  # a 2 MB body would drown Hypothesis' report
        body = self.body if len(self.body) < 300 else self.body[:300] + b"..."
        return f"HostileRequest(body={body!r}, headers={self.headers!r})"


def _encoded(value: object) -> bytes:
    return json.dumps(value, allow_nan=True).encode("utf-8")


def _rarely(draw: st.DrawFn, usual: st.SearchStrategy, rare: st.SearchStrategy) -> object:
    """One draw in eight from ``rare``: most requests should get past the first check."""
    return draw(rare if draw(st.integers(0, 7)) == 0 else usual)


@st.composite
def _headers(draw: st.DrawFn) -> dict[str, str]:
    headers = {}
    content_type = _rarely(
        draw, st.just("application/json"), st.sampled_from([*CONTENT_TYPES, None]) | HEADER_TEXT
    )
    if content_type is not None:
        headers["Content-Type"] = content_type
    for name, right in (("X-API-Key", API_KEY), ("Authorization", f"Bearer {ADMIN}")):
        value = _rarely(
            draw, st.just(right), st.sampled_from([None, right + "x", "Bearer é"]) | HEADER_TEXT
        )
        if value is not None:
            headers[name] = value
    variant = _rarely(
        draw, st.none(), st.sampled_from(["production", "staging", "canary"]) | HEADER_TEXT
    )
    if variant is not None:
        headers["X-Variant"] = variant
    if draw(st.booleans()):
        headers["X-Client-Key"] = draw(HEADER_TEXT)
    return headers


def requests_for(path: str) -> st.SearchStrategy[HostileRequest]:
    """Bodies and headers for ``path``: mostly JSON (plausible or not), then raw bytes and the
    named nasties."""
    body = st.one_of(
        PLAUSIBLE[path].map(_encoded),
        JSON.map(_encoded),
        PLAUSIBLE[path].map(_encoded).map(lambda b: b[: len(b) // 2]),  # cut short
        st.binary(max_size=64),
        st.sampled_from(NASTY_BODIES),
    )
    return st.builds(HostileRequest, body, _headers())


def assert_refused_politely(status: int, answer: dict | None, request: HostileRequest) -> None:
    """A success, or a 4xx whose JSON body holds an error sentence; never a 5xx."""
    event(f"status {status}")  # --hypothesis-show-statistics shows how many got through
    assert status < 500, (status, answer, request)
    if status >= 400:
        assert isinstance(answer, dict) and isinstance(answer.get("error"), str), (status, answer)
        assert len(answer["error"]) > 10, answer
