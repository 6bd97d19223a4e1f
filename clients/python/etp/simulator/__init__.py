"""The sensor simulator behind `etp simulate` and `etp demo`: simulated devices (waveforms,
faults) sending through the real ingest API with their own tokens. See docs/simulator.md."""
