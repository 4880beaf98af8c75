"""Golden suites: the registry (names and sha256), the store (pooch fetch, cache, lock), the
historical environments and the builder that records goldens in them."""
