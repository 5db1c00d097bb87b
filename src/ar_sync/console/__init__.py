"""The web console: the business's own screens (connect, first-run preview and go-live,
rules, customers and invoices, runs, the report), server-rendered with Starlette and Jinja2,
htmx vendored as a static file. The same ASGI app runs locally (`ar-sync console`, uvicorn on
127.0.0.1) and on Lambda (ar_sync.aws.console, through Mangum)."""
