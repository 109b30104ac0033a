"""bpfcap: record kernel events with eBPF into Parquet traces, report on them offline."""

__version__ = "0.1.0"
