"""`python -m syncd` does what the `syncd` console script does."""

from syncd.cli import main

if __name__ == "__main__":
    main()
