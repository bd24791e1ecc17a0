"""A command that cannot reach its services says which setting or command fixes it, in one line."""

import pytest
from click.testing import CliRunner

from pulsemart.cli.main import cli


@pytest.mark.parametrize(
    "args",
    [["trace", "line", "1"], ["archive", "status"], ["datamart", "build"], ["quarantine", "list"]],
)
def test_commands_without_services_fail_with_one_clear_line(tmp_path, args):
    env = {"PULSEMART_HOME": str(tmp_path / "home"), "PULSEMART_DATABASE_URL": ""}
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == 1
    assert "embedded PostgreSQL" in result.output and "pulsemart services up" in result.output
    assert "Traceback" not in result.output


def test_a_bad_setting_is_named():
    result = CliRunner().invoke(cli, ["archive", "status"], env={"PULSEMART_PROFILE": "gcp"})
    assert result.exit_code == 1 and "PULSEMART_PROFILE='gcp'" in result.output
