"""Development tooling, kept out of the product's code paths: fake APIs, synthetic data, sample writers and
the smart-meter generator. Product modules never import this package; only the `energy-assets` command's
development subcommands (and the tests and benchmarks) do."""
