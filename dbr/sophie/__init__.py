"""Sophie, the reviewing AI: analyses, findings, batches and pattern detection.

See docs/design/sophie.md.
"""
