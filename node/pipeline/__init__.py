"""The write path's stages: sequencer log, signature checks, block production, store writer."""
