"""Stand-in upstream servers on loopback that speak provider wire formats for tests."""
