"""Running a plan on an engine: dispatch, one target's life, release, outcomes, freshness, image tests, lock."""
