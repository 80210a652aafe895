"""`python -m vaelab` (also under torchrun)."""

from vaelab.cli.main import main

if __name__ == "__main__":
    main()
