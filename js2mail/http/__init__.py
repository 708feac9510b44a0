"""The HTTP edge: Litestar app, auth, rate limits, routes, error mapping. Only this package imports Litestar."""
