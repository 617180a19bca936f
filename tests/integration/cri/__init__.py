"""A small Kubernetes CRI (runtime.v1) gRPC client for tests: see client.py and api.proto."""
