"""Where and how the library runs: devices (CUDA, MPS, CPU), torchrun process groups, and a shared
server's policy (per-visitor budgets, one queue per device)."""
