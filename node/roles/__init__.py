"""Node roles composed from the pipeline's parts: the operator and the replica."""
