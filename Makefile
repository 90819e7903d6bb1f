# Hand-ID Lab: `make run` (dashboard on localhost) and `make test` (every test, browser tests included).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8501
DEMO_DATA := data/synthetic-11k

.PHONY: run test bench venv demo-data chromium clean

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

demo-data: venv
	$(PY) -m core.data prepare-demo --config configs/demo.yaml

run: venv demo-data
	$(PY) -m streamlit run dashboard/app.py --server.address $(HOST) --server.port $(PORT) \
		--server.headless true --browser.gatherUsageStats false

# Debian's chromium drives the browser tests (Playwright never downloads a browser here).
chromium:
	@command -v chromium >/dev/null || { apt-get update -q && apt-get install -y -q chromium; }

test: venv chromium
	$(PY) -m pytest; rc=$$?; [ $$rc -ne 5 ] || echo "pytest collected no tests: that is a failure here"; exit $$rc

bench: venv
	$(PY) -m bench

clean:
	rm -rf $(VENV) .cache tests/artifacts
