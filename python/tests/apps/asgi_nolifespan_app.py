"""An ASGI 3 app without lifespan support (as Django's ASGIHandler: it raises on it)."""
async def app(scope, receive, send):
    if scope["type"] != "http":
        raise ValueError("only http, not %s" % scope["type"])
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})
