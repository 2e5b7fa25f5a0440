"""The admin's pages, server-rendered by Flask."""
