import pytest

from pulsemart.quality import RuleSetError, load_rules
from pulsemart.quality.rules import parse_rules


def test_packaged_rules_load_and_every_rule_is_documented():
    rules = load_rules()
    assert rules.version == "1.0.0"
    assert rules.thresholds.fix_confidence == 0.8
    assert all(rule.description for rule in rules.rules)
    assert len({rule.id for rule in rules.rules}) == len(rules.rules)


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"id": "r", "description": "d", "detect": "nope"}, "unknown detector"),
        ({"id": "r", "description": "d", "detect": "missing", "repair": "nope"}, "unknown repair"),
        (
            {"id": "r", "description": "d", "detect": "missing", "event_types": ["x"]},
            "unknown event",
        ),
        ({"id": "r", "description": "d", "detect": "missing", "weight": 2}, "weight"),
        (
            {"id": "r", "description": "d", "detect": "missing", "confidence": {"from": "?"}},
            "confidence",
        ),
    ],
)
def test_bad_rule_files_are_refused_with_the_rule_named(rule, message):
    with pytest.raises(RuleSetError, match=message):
        parse_rules({"version": "x", "rules": [rule]})
