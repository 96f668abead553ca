# Two commands do all the set-up on a fresh machine (Python >= 3.11):
#   make smoke   install mejax into .venv, build synthetic_me/micro, train the ConvLSTM smoke preset
#                and analyse it (WORKDIR/analysis/report.html)
#   make test    install mejax into .venv and run the whole test suite
VENV ?= .venv
PY := $(VENV)/bin/python
DATA_DIR ?= $(HOME)/tensorflow_datasets
WORKDIR ?= runs/smoke

.PHONY: install smoke test

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

smoke: install
	$(PY) -m mejax.prepare synthetic_me/micro --data_dir $(DATA_DIR)
	$(PY) -m mejax.main --config configs/convlstm.py:smoke --workdir $(WORKDIR) \
	  --config.data.data_dir=$(DATA_DIR)
	$(PY) -m mejax.analyze --workdir $(WORKDIR) --data_dir $(DATA_DIR)

test: install
	$(PY) -m pytest -q
