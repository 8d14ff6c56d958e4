"""Command line of the trainer: ``python -m opti_trainer {train,export,val} ...``."""

import sys

from opti_trainer.cli import main

if __name__ == "__main__":
    sys.exit(main())
