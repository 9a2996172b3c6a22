"""The device cards shipped with analogsim (TOML files; see analogsim.cards for the schema)."""
