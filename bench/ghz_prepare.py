"""Makes bench/ghz/*.json runnable against a live server: real offer ids, host and API key filled in.

The committed configs name the placeholder offer id act_0000000000000000,
because offer ids are assigned by the server. This reads the tenant's active
offers and writes copies of the configs with real ids (spread round-robin
over the offers), then prints the ghz commands:

    .venv/bin/python bench/ghz_prepare.py --target 127.0.0.1:50051 --api-key arb_…
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from arbiter.client import Client

GHZ_DIR = Path(__file__).resolve().parent / "ghz"
PLACEHOLDER_OFFER = "act_0000000000000000"


def prepared(config: dict[str, Any], target: str, api_key: str, offer_ids: Iterator[str]) -> dict[str, Any]:
    """A copy of `config` aimed at `target` with `api_key`, each placeholder offer id replaced by the next real one."""
    parts = json.dumps(config).split(PLACEHOLDER_OFFER)
    result: dict[str, Any] = json.loads(parts[0] + "".join(next(offer_ids) + part for part in parts[1:]))
    result["host"] = target
    result["metadata"] = {**result.get("metadata", {}), "authorization": f"Bearer {api_key}"}
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--target", default="127.0.0.1:50051", help="server host:port (default %(default)s)")
    parser.add_argument(
        "--api-key", required=True, help="an API key of the tenant whose offers to use (make run prints a demo key)"
    )
    parser.add_argument("--out", type=Path, default=GHZ_DIR.parent / "results" / "tmp" / "ghz", help="output folder")
    args = parser.parse_args(argv)
    with Client(args.target, api_key=args.api_key) as client:
        offer_ids = [offer.id for offer in client.list_offers(status="active", page_size=1000).offers]
    if not offer_ids:
        print(f"the key's tenant has no active offers at {args.target} (start it with `make run`)", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    cycle = itertools.cycle(offer_ids)
    for source in sorted(GHZ_DIR.glob("*.json")):
        config = prepared(json.loads(source.read_text()), args.target, args.api_key, cycle)
        destination = args.out / source.name
        destination.write_text(json.dumps(config, indent=2) + "\n")
        print(f"ghz --config {destination}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
