from energy_assets_tests.neso.conftest import clock, fake_api, fake_state, neso  # noqa: F401 (fixtures)
