"""The wire: frames, messages, the request server and the RPC clients' core."""
