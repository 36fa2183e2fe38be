"""td3drive.core.options: how every config section and backend declares and checks its keys."""

from dataclasses import dataclass, field

import pytest

from td3drive.core.errors import ConfigError
from td3drive.core.options import allowed_text, build, describe, keys, leaf, one_of, opt, positive, value_type


@dataclass(frozen=True)
class Inner:
    rate: float = leaf(0.5, positive(), "a rate (1/s)")


@dataclass(frozen=True)
class Outer:
    count: int = leaf(3, positive(), "how many")
    mode: str = leaf("a", one_of("a", "b"), "which")
    limit: float | None = leaf(None, opt(positive()), "a cap, or none", flag=True)
    on: bool = leaf(True, None, "switch", fixed=True)
    inner: Inner = field(default_factory=Inner)


def test_build_fills_defaults_checks_types_and_ranges_and_names_the_key():
    o = build(Outer, {"count": 7, "limit": 2, "inner": {"rate": 1}}, "sec.")
    assert (o.count, o.mode, o.limit, o.on, o.inner.rate) == (7, "a", 2.0, True, 1.0)
    assert isinstance(o.limit, float) and isinstance(o.inner.rate, float)  # an int given for a float becomes one
    bad = [({"count": 0}, "'sec.count' = 0: must be a number > 0"),
           ({"count": 1.5}, "'sec.count' = 1.5: must be of type int"),
           ({"count": True}, "'sec.count' = True: must be of type int"),  # a bool is not an int here
           ({"count": None}, "'sec.count' = None: must be of type int"),
           ({"mode": "c"}, "'sec.mode' = 'c': must be one of 'a', 'b'"),
           ({"limit": float("nan")}, "'sec.limit' = nan: must be a finite number"),
           ({"limit": -1}, "'sec.limit' = -1: must be a number > 0, or null"),
           ({"inner": {"rate": "x"}}, "'sec.inner.rate' = 'x': must be of type float"),
           ({"inner": 3}, "'sec.inner' = 3: must be a mapping"),
           ({"cuont": 1}, "unknown config key 'sec.cuont': allowed keys here are count, inner, limit, mode, on")]
    for data, message in bad:
        with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
            build(Outer, data, "sec.")
    assert build(Outer, {"limit": None}).limit is None


def test_the_declarations_give_types_allowed_words_and_the_reference():
    assert value_type(Outer, "limit") == (float, True) and value_type(Outer, "on") == (bool, False)
    assert value_type(Outer, "inner") == (None, False)
    assert keys(Outer) == ["count", "mode", "limit", "on"]
    assert allowed_text(Outer, "on") == "true or false" and allowed_text(Outer, "mode") == "one of 'a', 'b'"
    assert describe(Outer, "sec.")[2] == ("sec.limit", None, "a number > 0, or null", "a cap, or none")


def test_a_key_of_an_unsupported_type_is_a_programming_error():
    @dataclass(frozen=True)
    class Listed:
        items: list = leaf(None)

    with pytest.raises(TypeError, match="a key must be bool, int, float or str"):
        build(Listed, {"items": [1]})
