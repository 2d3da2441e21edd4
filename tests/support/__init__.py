"""Test helpers for the gateway end-to-end tests: each module starts one real thing
(Traefik, oauth2-proxy, a test OIDC issuer, stand-in session hosts) on 127.0.0.1 inside
a context manager that always stops it. These are test helpers, not product code."""
