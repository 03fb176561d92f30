"""The ERPNext adapter: Frappe REST calls (client.py), POS -> documents (documents.py),
posting with idempotent retries (posting.py). It knows nothing of Starlette."""
