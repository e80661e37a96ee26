"""``p2pex demo``: an operator and replicas trading the chapter's community."""
