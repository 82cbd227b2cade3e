"""SDAKD's own machinery: option schema and checks, stage policy, feature taps."""
