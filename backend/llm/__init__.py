"""Talking to OpenAI-compatible chat APIs, and the built-in offline mock of one."""
