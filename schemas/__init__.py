"""Event and feature schemas: one definition used by the generator, the jobs and the tests."""
