"""Job handlers, one module per domain. Importing this package registers them all."""
