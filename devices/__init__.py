"""The device cards shipped with analogsim (TOML files; see analogsim.chip for the schema)."""
