"""What wraps one send, from the outside in: re-asking after a refused answer (`reask`), moving
down a profile's fallback chain (`fallback`), retrying one model (`retry`), and waiting for the
rate limits configured for it (`ratelimit`); `route.Route` composes the last two around one
model's `Pipeline`. None of them knows `Client`: each takes the send it wraps as a function.
"""
