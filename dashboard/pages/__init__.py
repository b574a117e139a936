"""The dashboard pages: each a `layout(conn, strings, lang)` and a `register(app)`."""
