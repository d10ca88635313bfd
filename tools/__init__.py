"""Developer tools outside the exporter package: local toolchain launchers used by tests and `make demo`."""
