"""The benchmarks' own server: production settings and URLs plus the baseline endpoints
(`/bench/bare`, `/bench/floor`) that exist only here, never in production URLs."""
