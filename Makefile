# The two set-up commands: `make run` and `make test`. Both install what is missing.
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup run test lint typecheck contracts validate pytest dist bench soak screenshot clean

setup:
	@bash packaging/bootstrap.sh

run: setup
	$(BIN)/emodesk $(ARGS)

test: setup lint contracts typecheck validate pytest

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

contracts:
	$(BIN)/lint-imports

typecheck:
	$(BIN)/mypy --strict emodesk

# The desktop entry and the AppStream metainfo, as the Debian package installs them.
validate:
	desktop-file-validate packaging/io.github.emodesk.EmoDesk.desktop
	appstreamcli validate --no-net --strict packaging/io.github.emodesk.EmoDesk.metainfo.xml

pytest:
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# dist/: the wheel, the sdist, the frozen app (one folder) and its .deb, built once per
# input under .cache/dist/; then their sizes and the frozen app's first-window time.
dist: setup
	$(BIN)/python packaging/dist.py $(ARGS)

bench: setup
	$(BIN)/python -m bench $(ARGS)

# The desktop app for an hour against the emulator (faults on a schedule); writes
# soak.json. Shorter: make soak ARGS="--minutes 5".
soak: setup
	$(BIN)/python -m bench.soak $(ARGS)

screenshot: setup
	xvfb-run -a -s "-screen 0 1280x800x24" $(BIN)/python -m bench.screenshot
	xvfb-run -a -s "-screen 0 1280x800x24" $(BIN)/python -m bench.screenshot_history
	$(BIN)/python -m bench.screenshot_first_launch  # its own Xvfb and openbox per size

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .cache dist
