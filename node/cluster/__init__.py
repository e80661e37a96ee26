"""Running the market on a replicated log: NATS servers, the JetStream log, attestations."""
