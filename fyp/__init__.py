"""fyp-features: platform plumbing (config, local stack, generator, CLI)."""
