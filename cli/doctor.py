"""`bpfcap doctor`."""

from __future__ import annotations

import sys

import click


@click.command()
def doctor() -> None:
    """Check that this host can record: privileges, BCC, kernel headers, tracefs, every
    tracepoint bpfcap uses, the kernel struct members it reads (located in the kernel's
    BTF), and a trial load of the BPF program. Exits non-zero when recording cannot
    work."""
    from bpfcap.capture.doctor import checks

    failed = False
    for c in checks():
        mark = "OK  " if c.ok else ("FAIL" if c.required else "WARN")
        fix = f"; fix: {c.fix}" if not c.ok and c.fix else ""
        click.echo(f"{mark} {c.name}: {c.detail}{fix}")
        failed |= c.required and not c.ok
    if failed:
        click.echo("recording will not work on this host until the FAIL lines are fixed")
        sys.exit(1)
