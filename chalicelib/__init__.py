"""The multi-tenant catalog and orders application behind the Chalice routes in app.py."""
