"""The web pages: server-rendered HTML, SVG charts and the static files they use."""
