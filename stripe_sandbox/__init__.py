"""An offline, stateful Stripe stand-in: the Stripe HTTP API, a hosted Checkout page,
signed webhooks with retries and fault injection, and a /_sandbox control API.

Run it with `python -m stripe_sandbox`; drive it from tests with
`stripe_sandbox.process.SandboxProcess`.
"""
