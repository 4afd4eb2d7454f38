"""Open Chat: a self-hosted private AI chat service on the encrypted DeltaDB store."""
