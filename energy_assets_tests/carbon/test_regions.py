import polars as pl
import pytest

from energy_assets.carbon.regions import NESO_REGIONS, SMART_METER_REGION_TO_NESO, region_map_frame, unmapped_regions
from energy_assets.devtools.neso_regional_samples import REGIONS as NESO_API_REGIONS
from energy_assets.devtools.smart_meter_generator import REGIONS as GENERATOR_REGIONS


def test_every_region_the_generator_writes_maps_to_one_distinct_dno_region():
    assert set(GENERATOR_REGIONS) == set(SMART_METER_REGION_TO_NESO)
    ids = [SMART_METER_REGION_TO_NESO[r] for r in GENERATOR_REGIONS]
    assert len(set(ids)) == len(ids) == 13  # injective: no two utility regions share a NESO region
    assert all(1 <= i <= 14 for i in ids)  # DNO regions, never the nations (15..17) or GB (18)


@pytest.mark.parametrize(
    "region,neso_name",
    [
        ("Southern Scotland", "South Scotland"),
        ("Merseyside and Northern Wales", "North Wales and Merseyside"),
        ("Southern Wales", "South Wales"),
        ("Eastern England", "East England"),
        ("South Eastern England", "South East England"),
        ("Southern England", "South England"),
        ("North Western England", "North West England"),
        ("London", "London"),
    ],
)
def test_mapping_targets_the_region_of_the_same_name_in_the_api(region, neso_name):
    api_names = {rid: short for rid, _, short, _ in NESO_API_REGIONS}
    assert api_names[SMART_METER_REGION_TO_NESO[region]] == neso_name
    assert NESO_REGIONS[SMART_METER_REGION_TO_NESO[region]] == neso_name


def test_region_names_match_the_api_shortnames():
    assert NESO_REGIONS == {rid: short for rid, _, short, _ in NESO_API_REGIONS}


def test_unmapped_regions_are_reported_with_counts_including_null():
    readings = pl.DataFrame(
        {"meterpoint_id": ["a", "a", "b", "c", "d"], "region": ["London", "Atlantis", "Atlantis", None, "Yorkshire"]}
    )
    out = unmapped_regions(readings)
    assert out.to_dicts() == [
        {"region": "Atlantis", "readings": 2, "meterpoints": 2},
        {"region": None, "readings": 1, "meterpoints": 1},
    ]


def test_a_mapping_to_a_region_id_that_does_not_exist_is_refused():
    with pytest.raises(ValueError, match=r"\[42\]"):
        region_map_frame({"London": 42})
