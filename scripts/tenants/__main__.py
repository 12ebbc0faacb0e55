"""`python -m scripts.tenants`: the tenant control plane's command line (scripts.tenants.cli)."""

import sys

from scripts.tenants.cli import main

sys.exit(main())
