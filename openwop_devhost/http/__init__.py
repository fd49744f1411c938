"""The HTTP side of the host: the Starlette app (:mod:`.app`) and everything between a request and the engine.

Routing on the raw path (:mod:`.routing`), API keys and scopes (:mod:`.auth`), idempotency
(:mod:`.idempotency`), the outermost ASGI layer (:mod:`.middleware`), the per-host and per-request
state (:mod:`.state`), the REST handlers (:mod:`.handlers`), SSE and polling (:mod:`.sse`), run
pages for browsers (:mod:`.pages`), the ``/_devhost`` admin routes (:mod:`.admin`) and discovery
(:mod:`.discovery`, with the packaged ``openapi.json``).
"""
