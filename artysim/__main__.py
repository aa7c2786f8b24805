"""``python -m artysim``: the same command line as the ``artysim`` entry point."""

from artysim.cli import main

if __name__ == "__main__":
    main()
