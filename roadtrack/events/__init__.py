"""Events: per-track agent, action and location labels turned into tubes per label type."""
