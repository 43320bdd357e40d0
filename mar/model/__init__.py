"""The generator: config and named sizes, the backbone, masking, tokens, and the categorical head."""
