"""Exports: CSV and XLSX files of what a member may see, with expiring signed links.

`service` builds (as the member who asked), stores, signs and purges; `writers` streams rows
from PostgreSQL to CSV (COPY) and XLSX (XlsxWriter, constant memory); `cells` is the
formula-injection rule; `summary` writes the analytics summary with its charts.
"""
