"""Out-of-cluster steps, converged idempotently: Keycloak client and roles, PostgreSQL role and
database, the S3 cache bucket and its identity. Every credential goes into the site's sops file
before it is applied to a service."""

# Seconds each service has to connect and to answer each request (`generator bootstrap --timeout`).
DEFAULT_TIMEOUT = 15.0
