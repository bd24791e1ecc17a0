"""`python -m ml PATH`: the offline evaluation report (same as `python -m ml.evaluate PATH`)."""

from ml.evaluate import main

raise SystemExit(main())
