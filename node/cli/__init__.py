"""The ``p2pex`` command line: one module per command group, ``main`` ties them."""
