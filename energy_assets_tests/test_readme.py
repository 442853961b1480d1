"""The README tells the truth: its graph is the code's graph and its commands exist."""

import re

from energy_assets import settings
from energy_assets.cli import build_parser
from energy_assets.definitions import defs
from energy_assets.graph import mermaid

README = (settings.PROJECT_ROOT / "README.md").read_text()


def test_readme_graph_is_the_definitions_graph():
    block = re.search(r"```mermaid\n(.*?)```", README, flags=re.S)
    assert block, "README has no mermaid graph"
    assert block.group(1) == mermaid(defs), "README graph is stale: paste the output of `energy-assets graph`"


def test_every_energy_assets_command_in_the_readme_exists():
    commands = set(re.findall(r"energy-assets ([a-z][a-z-]+)", README))
    known = set(build_parser()._subparsers._group_actions[0].choices)
    assert commands and commands <= known, commands - known


def test_every_asset_is_described():
    for key in defs.resolve_asset_graph().materializable_asset_keys:
        spec = defs.resolve_asset_graph().get(key)
        assert spec.description and len(spec.description) > 20, key.to_user_string()


def test_readme_settings_table_is_the_settings_module():
    assert settings.readme_table() in README, "README settings table is stale: paste settings.readme_table()"


def test_every_setting_in_the_readme_is_a_setting_and_every_setting_is_listed():
    named = set(re.findall(r"`((?:ENERGY|NESO|ELECTRICITY_MAPS|SMART_METER)_[A-Z_]+)`", README))
    unknown = named - set(settings.SETTINGS) - set(settings.RENAMED)
    assert not unknown, f"the README names variables the code does not read: {sorted(unknown)}"


def test_the_carbon_aware_scheduling_example_runs():
    """The README's example builds a real sensor for a job of one's own."""
    from dagster import SensorDefinition, job, op

    @op
    def work():
        return None

    @job
    def my_job():
        work()

    block = next(b for b in re.findall(r"```python\n(.*?)```", README, flags=re.S) if "carbon_aware_sensor(" in b)
    scope = {"my_job": my_job}
    exec(block, scope)
    assert isinstance(scope["my_sensor"], SensorDefinition) and scope["my_sensor"].name == "my_job_carbon_aware"
    assert scope["my_sensor"].job_name == "my_job"
