"""The storefront review widget: a verifying server (serve.py) and plain-JavaScript widget (static/)."""
