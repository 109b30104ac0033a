"""`bpfcap` entry point and the one error boundary.

Library code raises typed errors (formats/errors.py); here they become
`error: <what>; <how to fix>` on stderr and a non-zero exit. Anything else is a bug and
keeps its traceback (shortened to one line unless -v is given).
"""

from __future__ import annotations

import sys

import click

from bpfcap import __version__

from .doctor import doctor
from .export import export
from .info import info
from .merge import merge
from .record import record
from .report import report
from .share import redact, share, slice_
from .summary import diff, summary


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="""\b
examples:
  sudo bpfcap record -d 10 -o t.parquet      # record 10 s system-wide
  sudo bpfcap record -- make -j2             # record a command and its children
  bpfcap report opensnoop t.parquet -x       # failed opens, as opensnoop -x
  bpfcap report execsnoop t.parquet -T       # execs with wall-clock time
  bpfcap info t.parquet                      # what the trace holds
  bpfcap export t.parquet --type open -o open.parquet  # one kind, for any reader
  bpfcap doctor                              # can this host record?""",
)
@click.version_option(__version__, "-V", "--version", prog_name="bpfcap")
@click.option("-v", "--verbose", is_flag=True, help="Show tracebacks of unexpected errors.")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """Record kernel events with eBPF into a Parquet trace; rebuild BCC tools' output
    from it offline."""
    ctx.obj = {"verbose": verbose}


cli.add_command(record)
cli.add_command(report)
cli.add_command(info)
cli.add_command(export)
cli.add_command(merge)
cli.add_command(doctor)
cli.add_command(slice_)
cli.add_command(redact)
cli.add_command(share)
cli.add_command(summary)
cli.add_command(diff)


def _frugal_under_a_memory_limit() -> None:
    """Under an address-space limit (`ulimit -v`), allocate as the limit means: Arrow's
    default allocator (mimalloc) reserves ~1.7 GB of address space it never touches,
    and glibc 64 MB per thread's arena, so a report using 300 MB would fail under 1 GB.
    The C allocator with two arenas reserves about what it uses (before pyarrow loads:
    commands import it lazily)."""
    try:
        import resource
    except ImportError:  # not on Windows
        return
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return
    import os

    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    try:
        import ctypes

        ctypes.CDLL(None).mallopt(-8, 2)  # M_ARENA_MAX: glibc's; other libcs lack it
    except (OSError, AttributeError):
        pass


def main(argv: list[str] | None = None) -> None:
    from bpfcap.formats.errors import BpfcapError

    _frugal_under_a_memory_limit()
    verbose = "-v" in (argv or sys.argv[1:]) or "--verbose" in (argv or sys.argv[1:])
    try:
        rc = cli.main(args=argv, prog_name="bpfcap", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("error: aborted", err=True)
        rc = 130
    except click.ClickException as e:
        e.show()
        rc = e.exit_code
    except BpfcapError as e:
        click.echo(f"error: {e}", err=True)
        rc = e.exit_code
    except BrokenPipeError:
        # `bpfcap report ... | head`: the reader left; not an error.
        sys.stderr.close()
        rc = 0
    except KeyboardInterrupt:
        click.echo("error: interrupted", err=True)
        rc = 130
    except MemoryError as e:  # pyarrow's ArrowMemoryError is one too
        click.echo(f"error: out of memory ({e}); raise the memory limit (ulimit -v)", err=True)
        rc = 1
    except Exception as e:  # a bug: say so, keep the traceback available
        if verbose:
            raise
        click.echo(
            f"error: internal error: {type(e).__name__}: {e} (run with -v for the traceback)",
            err=True,
        )
        rc = 70
    sys.exit(rc if isinstance(rc, int) else 0)
