"""A container health check: ``python -m spikedet.service.healthcheck [URL]`` exits 0 when ``URL/readyz``
answers 200 within 3 s, else 1 (one line on stderr saying why). The URL defaults to the local service on
``$SPIKEDET_PORT`` (8000). Standard library only: a slim image has no curl."""

from __future__ import annotations

import http.client
import os
import sys
import urllib.error
import urllib.request

TIMEOUT_S = 3.0


def check(url: str) -> str | None:
    """None when ``url/readyz`` answers 200, else why not (one line)."""
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/readyz", timeout=TIMEOUT_S) as answer:
            return None if answer.status == 200 else f"/readyz answered {answer.status}"
    except urllib.error.HTTPError as e:
        return f"/readyz answered {e.code}"
    except (urllib.error.URLError, OSError) as e:
        return f"no answer from {url}: {getattr(e, 'reason', e)}"
    except (ValueError, http.client.HTTPException) as e:  # a malformed URL (e.g. SPIKEDET_PORT=abc), a bad answer
        return f"bad URL {url!r}: {e}"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    url = argv[0] if argv else f"http://127.0.0.1:{os.environ.get('SPIKEDET_PORT') or 8000}"
    problem = check(url)
    if problem:
        print(f"unhealthy: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
