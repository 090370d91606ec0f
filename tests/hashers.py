"""A PBKDF2 hasher for the test process only (tests/conftest.py: fast_password_hashing)."""
from django.contrib.auth.hashers import PBKDF2PasswordHasher


class FastPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    # Same algorithm name, so Django's own PBKDF2PasswordHasher (in the stacks' processes)
    # reads the iteration count from the hash and verifies it.
    iterations = 1_000
