"""The AI agent: context from the database, the Claude request (cached stable prefix, strict
tool output), validation of the decision, and the reply/draft flows the workers run.

Modules: `decision` (tool schema + pydantic validation), `context` (what the database gives
us, rendered as prompt text), `prompting` (the Messages API request), `claude` (the call with
retries on malformed output), `service` (ai.reply / ai.draft end to end).
"""
