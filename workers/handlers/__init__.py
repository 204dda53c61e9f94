"""Job handlers, one module per domain. Importing this package registers them all."""

from workers.handlers import (
    ai,  # noqa: F401 - ai.reply, ai.draft
    sms,  # noqa: F401 - sms.send, sms.reconcile
)
