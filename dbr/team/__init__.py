"""Team: members and invitations (Supabase Auth), client settings, per-client credentials and
integration health."""
