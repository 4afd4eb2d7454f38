"""Route modules: each is thin and delegates to the services in ``Services``."""
