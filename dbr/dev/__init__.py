"""Development tooling, kept apart from the library: the local stack (PostgreSQL, pg_cron,
the processes `dbr up` starts), throw-away test databases, type generation, and the local
stand-ins that speak Twilio's, Anthropic's and Cal.com's wire formats when no credentials
are set. Nothing in the product's runtime path imports this package, except to start a
stand-in locally."""
