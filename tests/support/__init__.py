"""Test harnesses shared by every test folder (emulator, daemon): one way to start each."""
