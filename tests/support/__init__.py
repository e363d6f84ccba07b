"""What the tests (and the benchmarks) share: clips, the tiny model, loopback servers.

Tests import it as `support.*` (tests/ is on sys.path through the rootdir conftest);
benchmarks put the repository root on sys.path and import `tests.support.*`.
"""
