"""HTTP (aiohttp): the UI server's web app and the services' health endpoints.
The only package that imports aiohttp."""
