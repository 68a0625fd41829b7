"""Test doubles that speak real protocols over real sockets (model server, later Discord)."""
