"""The unit registry: the operator's file and the services' copy of it (registry.units)."""
