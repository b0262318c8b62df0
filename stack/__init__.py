"""The local stack the project installs and starts itself: tansu, Redis, connector jars."""
