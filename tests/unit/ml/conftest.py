"""Fixtures for the ml tests; the builders live in ml_builders."""

import pandas as pd
import pytest
from ml_builders import taste_groups


@pytest.fixture
def groups_frame() -> pd.DataFrame:
    return taste_groups()
