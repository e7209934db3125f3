"""The one registry mechanism: every kind, duplicates, unknown names, capabilities."""

import pytest

from compactnn.registry import KINDS, Registry, accepted_kwargs, available, get, registry


def test_every_kind_is_populated_on_first_use():
    for kind in KINDS:
        if KINDS[kind] is not None:
            assert available(kind), kind
    assert {"dc", "dense"} <= set(available("linear"))
    assert {"dcnn", "mlp", "dense-mlp", "shl", "lenet"} <= set(available("model"))
    assert available("task") == ["classification", "multilabel", "regression"]
    assert "paper" in available("schedule") and "adam" in available("optimizer")
    assert "nonlinearity" in available("experiment")


def test_duplicates_and_unknown_names_are_one_line_errors():
    r = Registry("thing")
    r.register("a", object())

    @r.register("b")
    def b():
        pass

    assert b.registry_name == "b" and r.names() == ["a", "b"]
    with pytest.raises(ValueError, match="thing name 'a' is already registered"):
        r.register("a", object())
    with pytest.raises(ValueError, match=r"unknown thing 'c'; available: a, b"):
        r.get("c")
    with pytest.raises(ValueError, match="unknown registry kind"):
        registry("nope")
    with pytest.raises(ValueError, match="unknown layer 'nope'"):
        get("linear", "nope")


def test_capability_filter_and_accepted_kwargs():
    class WithCaps:
        @classmethod
        def capabilities(cls):
            return {"from_dense": True}

    r = Registry("thing")
    r.register("yes", WithCaps)
    r.register("no", object)
    assert r.names(capability="from_dense") == ["yes"]
    assert "rank" in accepted_kwargs(get("linear", "lowrank"))
    dcnn = accepted_kwargs(get("model", "dcnn"))  # follows **kwargs into StructuredMLP
    assert {"depth", "width", "layer_kwargs"} <= dcnn
    assert accepted_kwargs(lambda **kw: None) is None
