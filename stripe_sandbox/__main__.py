"""`python -m stripe_sandbox --host 127.0.0.1 --port 12111 --webhook-url URL --webhook-secret whsec_...`

Every flag can also come from the environment (names in brackets in --help)."""

from __future__ import annotations

import argparse
import os
import sys

import uvicorn

from .app import create_app
from .sandbox import SandboxConfig


def parse_config(argv: list[str] | None = None) -> SandboxConfig:
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="python -m stripe_sandbox",
                                     description="An offline, stateful Stripe stand-in.")
    parser.add_argument("--host", default=env("SANDBOX_HOST", "127.0.0.1"), help="[SANDBOX_HOST]")
    parser.add_argument("--port", type=int, default=int(env("SANDBOX_PORT", "12111")),
                        help="[SANDBOX_PORT]")
    parser.add_argument("--webhook-url", default=env("SANDBOX_WEBHOOK_URL"),
                        help="where events are POSTed; none: events are only stored [SANDBOX_WEBHOOK_URL]")
    parser.add_argument("--webhook-events", default=env("SANDBOX_WEBHOOK_EVENTS", "*"),
                        help="comma-separated event types sent to the webhook URL, like an endpoint's "
                             "enabled_events; * is every type [SANDBOX_WEBHOOK_EVENTS]")
    parser.add_argument("--webhook-secret", default=env("STRIPE_WEBHOOK_SECRET"),
                        help="whsec_... used to sign deliveries [STRIPE_WEBHOOK_SECRET]")
    parser.add_argument("--public-url", default=env("SANDBOX_PUBLIC_URL"),
                        help="base URL browsers use to reach the sandbox [SANDBOX_PUBLIC_URL]")
    parser.add_argument("--api-key", default=env("SANDBOX_API_KEY"),
                        help="accept only this secret key (default: any sk_test_ key) [SANDBOX_API_KEY]")
    parser.add_argument("--state", default=env("SANDBOX_STATE"),
                        help="JSON file keeping state across restarts [SANDBOX_STATE]")
    parser.add_argument("--retry-base", type=float, default=float(env("SANDBOX_RETRY_BASE", "0.2")),
                        help="seconds before the first webhook retry, doubled each time [SANDBOX_RETRY_BASE]")
    parser.add_argument("--retry-max-delay", type=float,
                        default=float(env("SANDBOX_RETRY_MAX_DELAY", "30")), help="[SANDBOX_RETRY_MAX_DELAY]")
    parser.add_argument("--max-attempts", type=int, default=int(env("SANDBOX_MAX_ATTEMPTS", "8")),
                        help="delivery attempts per event before giving up [SANDBOX_MAX_ATTEMPTS]")
    parser.add_argument("--webhook-timeout", type=float,
                        default=float(env("SANDBOX_WEBHOOK_TIMEOUT", "5")), help="[SANDBOX_WEBHOOK_TIMEOUT]")
    parser.add_argument("--bank-debit-delay", type=int,
                        default=int(env("SANDBOX_BANK_DEBIT_DELAY", "60")),
                        help="sandbox seconds before a bank debit settles [SANDBOX_BANK_DEBIT_DELAY]")
    args = parser.parse_args(argv)
    if args.webhook_url and not args.webhook_secret:
        parser.error("--webhook-url needs --webhook-secret (or STRIPE_WEBHOOK_SECRET)")
    return SandboxConfig(
        host=args.host, port=args.port, webhook_url=args.webhook_url,
        webhook_events=tuple(t.strip() for t in args.webhook_events.split(",") if t.strip()) or ("*",),
        webhook_secret=args.webhook_secret, public_url=args.public_url, api_key=args.api_key,
        state_file=args.state, retry_base=args.retry_base, retry_max_delay=args.retry_max_delay,
        max_attempts=args.max_attempts, webhook_timeout=args.webhook_timeout,
        bank_debit_delay=args.bank_debit_delay)


def main(argv: list[str] | None = None) -> None:
    config = parse_config(argv)
    webhooks = f"webhooks to {config.webhook_url}" if config.webhook_url else "no webhook URL"
    print(f"stripe_sandbox: Stripe API and hosted pages at {config.base_url}, {webhooks}",
          file=sys.stderr, flush=True)
    uvicorn.run(create_app(config), host=config.host, port=config.port, log_level="warning",
                access_log=False)


if __name__ == "__main__":
    main()
