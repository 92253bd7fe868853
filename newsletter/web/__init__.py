"""The Starlette web app: the reader's pages, forms and security."""
