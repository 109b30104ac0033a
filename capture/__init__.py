"""The recording agent. Only capture/bpf_loader.py imports BCC."""
