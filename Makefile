# Quick start: `make demo` (record a few seconds and report) and `make test` (everything).
# Both run `make setup` first; it is idempotent.

VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Debian's python3 is the one that imports BCC (python3-bpfcc); elsewhere any python3.
BASEPY := $(shell test -x /usr/bin/python3 && echo /usr/bin/python3 || command -v python3)

.PHONY: setup demo test lint sample clean

setup:
	@scripts/setup-host
	@$(MAKE) --no-print-directory $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(BASEPY) -m venv --system-site-packages $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $@
	@echo "setup: $(VENV) ready ($$($(VENV)/bin/bpfcap --version))" >&2

demo: setup
	@scripts/demo

test: setup
	@scripts/setup-host --tests
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy --ignore-missing-imports formats analyze

# Record the sample traces of the current format (needs root); see sample-traces/README.md.
# Samples already there are never re-recorded: they are what older files look like.
SAMPLE := sample-traces/v$(shell $(PY) -c 'from bpfcap.formats.trace import FORMAT_VERSION as v; print(v)' 2>/dev/null)-open-exec.parquet
KERNEL_SAMPLE := $(subst open-exec,kernel,$(SAMPLE))
STRUCTS_SAMPLE := $(subst open-exec,structs,$(SAMPLE))
export STRUCTS_WORKLOAD = $(PY) tests/workloads/accepts.py && $(PY) tests/workloads/cwd_opens.py /tmp/bpfcap-sample-cwd && /bin/true structs-sample
sample: setup
	touch /tmp/bpfcap-wl-sample-ok
	test -e $(SAMPLE) || $(VENV)/bin/bpfcap record -o $(SAMPLE) -- \
	    $(PY) tests/workload.py run sample
	test -e $(KERNEL_SAMPLE) || $(VENV)/bin/bpfcap record -e all --syscall getppid \
	    -o $(KERNEL_SAMPLE) -- $(PY) tests/workload.py kernel /var/tmp
	rm -rf /tmp/bpfcap-sample-cwd
	test -e $(STRUCTS_SAMPLE) || $(VENV)/bin/bpfcap record -e exec,open,tcp \
	    -o $(STRUCTS_SAMPLE) -- sh -c "$$STRUCTS_WORKLOAD"

clean:
	rm -rf $(VENV) build *.egg-info out
