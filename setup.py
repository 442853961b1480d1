from setuptools import find_packages, setup

setup(
    name="energy_assets",
    version="0.1.0",
    description="A Dagster lakehouse for grid carbon and smart-meter data on Delta Lake",
    packages=find_packages(exclude=["energy_assets_tests*", "benchmarks*"]),
    python_requires=">=3.11",
    install_requires=[
        "dagster==1.13.*",
        "dagster-deltalake>=0.29",
        "dagster-deltalake-polars>=0.29",
        "dagster-duckdb>=0.29",
        "dagster-duckdb-polars>=0.29",
        "deltalake>=1.6,<2",
        "polars>=1.30",
        "pyarrow>=16",
        "duckdb>=1.1",
        "requests>=2.31",
        "tzdata",
    ],
    extras_require={
        # the live dashboard (energy-assets dashboard)
        "dashboard": ["streamlit>=1.37"],
        # the production instance on PostgreSQL (deploy/dagster-postgres.yaml)
        "postgres": ["dagster-postgres==0.29.*"],
        # the `celery` executor (ENERGY_ASSETS_EXECUTOR=celery) and its workers, with a Redis broker
        "distributed": ["dagster-celery==0.29.*", "redis>=4.5"],
        # the code-location image on Kubernetes (deploy/Dockerfile): the instance's storage and the K8sRunLauncher
        "k8s": ["dagster-postgres==0.29.*", "dagster-k8s==0.29.*"],
        # benchmarks: process-tree memory sampling and the Spark baseline (needs Java 17+)
        "bench": ["psutil>=5.9", "pyspark>=3.5"],
        # everything the test suite exercises, so no test is skipped for a missing package
        "dev": [
            "dagster-webserver==1.13.*",
            # pytest 9 keeps a test's id in `_id`; pytest-xdist 3.8 marks `--dist loadgroup` groups by rewriting
            # `_nodeid`, so under pytest 9 `xdist_group` is silently ignored (the shared demo then ran once per worker)
            "pytest>=8,<9",
            "pytest-httpserver>=1.0",
            "pytest-xdist>=3.5",
            "moto[server]>=5.0",
            "dagster-postgres==0.29.*",
            "dagster-celery==0.29.*",
            "redis>=4.5",
            "streamlit>=1.37",
            "playwright>=1.45",
            "duckdb-cli>=1.1",
            "psutil>=5.9",
            "pyspark>=3.5",
        ],
    },
    entry_points={"console_scripts": ["energy-assets=energy_assets.cli:main"]},
)
