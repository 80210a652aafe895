"""`python -m vaelab` (also under torchrun)."""

from vaelab.cli.main import run

if __name__ == "__main__":
    run()
