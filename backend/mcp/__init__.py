"""Tools from Model Context Protocol servers: configuration, supervised connections, catalogue."""
