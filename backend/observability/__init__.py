"""Operations: request/payment id context, JSON logs, Prometheus metrics, deep health, alerts."""
