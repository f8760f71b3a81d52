"""`python -m convcoach`: the same as the `convcoach` command."""

import sys

from .cli import main

sys.exit(main())
