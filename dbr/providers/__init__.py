"""Clients for outside services (Twilio, Anthropic, Cal.com, email); each factory points at the
local stand-in when no credentials are set."""
