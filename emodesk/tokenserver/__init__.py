"""The token service: mints ephemeral Live tokens for an organisation's clients, so the
API key stays on a server (`emodesk token-server`; needs `emodesk[server]`)."""
