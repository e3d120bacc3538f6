"""Identity benchmark: login latency with the production Argon2id parameters (t=3, m=64 MiB,
p=4) through the full service path (lookup, Argon2 verify, session, audit entry), and
eddsa-jcs-2022 credential issue and verify rates.  No arguments; one JSON line per case;
well under 3 minutes on a 2-core machine.
"""

import json
import os
import tempfile
from pathlib import Path

from zhijin.identity.benchmark import credential_rates, login_latency

LOGINS = int(os.environ.get("ZHIJIN_BENCH_LOGINS", "100"))
CREDENTIALS = int(os.environ.get("ZHIJIN_BENCH_CREDENTIALS", "3000"))

if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        login = login_latency(LOGINS, Path(tmp))
    print(json.dumps({"bench": "identity", "case": "login", **login}, sort_keys=True), flush=True)
    rates = credential_rates(CREDENTIALS)
    print(json.dumps({"bench": "identity", "case": "credentials", **rates}, sort_keys=True))
