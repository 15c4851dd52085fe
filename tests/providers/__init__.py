"""The provider contract suite: one set of tests run against every provider kind that has a test server."""
