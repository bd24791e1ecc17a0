"""The README's settings table is the settings model's: every variable, with its default, and
none the model does not know."""

from pathlib import Path

import pytest

from pulsemart.config import Environment, variable_of
from pulsemart.config.environment import NO_DEFAULT, read_environment, settings_table

README = Path(__file__).resolve().parents[2] / "README.md"
HEADER = "| setting | default | meaning |"


def readme_table() -> list[tuple[str, str, str]]:
    """(variable, default, meaning) per row of the README's settings table."""
    lines = README.read_text().splitlines()
    rows = []
    for line in lines[lines.index(HEADER) + 2 :]:
        if not line.startswith("|"):
            break
        variable, default, meaning = (
            cell.strip() for cell in line.strip().strip("|").split("|", 2)
        )
        assert variable.startswith("`") and variable.endswith("`"), line
        rows.append((variable.strip("`"), default, meaning))
    return rows


def test_the_table_names_every_variable_of_the_model_once_and_no_other():
    variables = [variable for variable, _, _ in readme_table()]
    assert len(variables) == len(set(variables))
    assert set(variables) == {variable_of(name) for name in Environment.model_fields}


@pytest.mark.parametrize("name", list(Environment.model_fields))
def test_the_table_shows_the_model_s_default(name):
    defaults = {variable: default for variable, default, _ in readme_table()}
    shown, info = defaults[variable_of(name)], Environment.model_fields[name]
    if info.default is None:  # what an unset variable means, in words
        when_unset = (info.json_schema_extra or {}).get("when_unset")
        assert shown == (when_unset or NO_DEFAULT)
    else:  # the value shown, read as the variable, is the default
        assert shown.startswith("`") and shown.endswith("`"), shown
        read = read_environment({variable_of(name): shown.strip("`")})
        assert getattr(read, name) == info.default


def test_the_table_is_the_one_the_model_renders():
    rendered = settings_table()
    text = README.read_text()
    start = text.index(HEADER)
    assert text[start : start + len(rendered) + 1] == rendered + "\n", (
        "README.md's settings table differs from the model: paste the output of "
        "`python -c 'from pulsemart.config.environment import settings_table; "
        "print(settings_table())'` over it"
    )


def test_the_blend_settings_default_to_the_weights_the_session_replay_chose():
    from ml.blend import BlendWeights

    chosen = BlendWeights()
    defaults = read_environment({}).model_copy()
    assert {
        name: getattr(defaults, f"blend_{name}")
        for name in ("model", "session", "history", "trending", "view", "cart", "purchase")
    } == {
        name: getattr(chosen, name)
        for name in ("model", "session", "history", "trending", "view", "cart", "purchase")
    }
    assert defaults.blend_half_life_s == chosen.half_life_s
    assert defaults.blend_history_half_life_s == chosen.history_half_life_s
