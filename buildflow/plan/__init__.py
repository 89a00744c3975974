"""Which targets a run takes, in which order: the plan, the selection, what changed since a commit."""
