# The two commands the README starts with: `make demo` and `make test`.
SHELL := /bin/bash
.ONESHELL:
.PHONY: demo test unit lint guest vm-demo chain-measure compare-measure deb debs rpm bench clean

VENVS = $(shell tools/bootstrap)
NEWEST = $(lastword $(VENVS))

demo:
	venv=$$(tools/bootstrap | tail -n1)
	PYTHONPATH=$(CURDIR) $$venv/bin/python tools/demo.py

test:
	set -e
	venvs=$$(tools/bootstrap)
	# the guest images (cached by their inputs) are built while the unit tests run: mostly
	# downloading and unpacking, beside tests that keep a core busy
	mkdir -p build
	( tools/guest-image && tools/guest-image --with cloud-init && tools/guest-image --suite bullseye \
	  && if [[ ,$${FWCFG_GUEST_RELEASES:-bullseye,trixie}, == *,trixie,* ]]; then tools/guest-image --suite trixie; fi \
	) >build/guest-image.log 2>&1 &
	images=$$!
	for v in $$venvs; do
	  echo "=== tests on $$($$v/bin/python --version)"
	  PYTHONPATH=$(CURDIR) $$v/bin/python -m pytest -q -m "not guest" tests
	done
	# (a failed build is built again, and its error reported, by the guest suite itself)
	wait $$images || echo "guest image build failed in the background (build/guest-image.log)"
	newest=$$(echo "$$venvs" | tail -n1)
	echo "=== real-guest tests on $$($$newest/bin/python --version)"
	# two guests at a time (a TCG guest keeps one core busy); a module's boots stay together
	PYTHONPATH=$(CURDIR) $$newest/bin/python -m pytest -q -m guest \
	  -n $${FWCFG_GUEST_JOBS:-2} --dist loadfile tests/guest

vm-demo:
	tools/vm-demo

# The critical chain measured as the README reports it (issue 18): 16 boots, one at a time,
# interleaved by kind; run it on an otherwise idle machine (about 30 minutes here).
chain-measure:
	newest=$$(tools/bootstrap | tail -n1)
	FWCFG_CHAIN_BOOTS=first=3,later=5,baked=5,empty=3 FWCFG_GUEST_JOBS=1 PYTHONPATH=$(CURDIR) \
	  $$newest/bin/python -m pytest -q -s -m guest tests/guest/test_critical_chain.py

# The cloud-init comparison with five later boots of the agent and five of the bare interpreter
# in its place, in turn, one guest at a time (15-17 minutes here): the README's later-boot
# figures. Run it on an otherwise idle machine.
compare-measure:
	newest=$$(tools/bootstrap | tail -n1)
	FWCFG_COMPARE_LATER=5 FWCFG_GUEST_JOBS=1 PYTHONPATH=$(CURDIR) \
	  $$newest/bin/python -m pytest -q -s -m guest tests/guest/test_cloud_init_compare.py

bench:
	venv=$$(tools/bootstrap | tail -n1)
	$$venv/bin/python bench/boot_cost.py

clean:
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache

# Packages, built from a clean tree: `git archive HEAD`, so uncommitted changes are NOT in them
# (a warning says so). Build logs go to stderr; the last line on stdout is the package's path:
# dist/fwcfg-agent_<version>_<arch>.deb and dist/fwcfg-agent-<version>-<release>.<arch>.rpm.
#
# DEBs: one per Debian release, each built in a clean chroot of that release (tools/deb-build:
# mmdebstrap, the suite's build dependencies, no network; chroots and results cached in
# $FWCFG_CACHE, default /var/cache/fwcfg-agent-dev). `make deb SUITE=bullseye|bookworm|trixie`;
# without SUITE, the host's own release (VERSION_CODENAME of /etc/os-release). `make debs`
# builds all three and prints their three paths.
DEB_SUITES = bullseye bookworm trixie

deb:
	@set -euo pipefail
	suite="$(SUITE)"
	[[ -n $$suite ]] || suite=$$(. /etc/os-release && echo "$${VERSION_CODENAME:-}")
	tools/deb-build "$$suite"

# The three side by side (the cold chroot builds mostly download and unpack).
debs:
	@set -euo pipefail
	tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT
	for s in $(DEB_SUITES); do tools/deb-build "$$s" >"$$tmp/$$s" & echo $$! >"$$tmp/$$s.pid"; done
	rc=0
	for s in $(DEB_SUITES); do wait "$$(cat "$$tmp/$$s.pid")" || { rc=1; echo "make debs: $$s failed" >&2; }; done
	for s in $(DEB_SUITES); do tail -n1 "$$tmp/$$s"; done
	exit $$rc

# The system's /usr/bin/python3 builds the RPM (rpmbuild expects it), so PATH is reset and
# PYTHONPATH dropped: a venv or pyenv on PATH must not leak into the package.
PKG_ENV = env -u PYTHONPATH -u PYTHONHOME PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8

rpm:
	@set -euo pipefail
	[[ -z "$$(git status --porcelain --untracked-files=no)" ]] \
	  || echo "make rpm: uncommitted changes are not packaged (building HEAD)" >&2
	tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT
	mkdir -p "$$tmp"/{SOURCES,SPECS,BUILD,RPMS,SRPMS}
	version=$$(git show HEAD:packaging/rpm/fwcfg-agent.spec | sed -n 's/^Version: *//p')
	git archive --format=tar.gz --prefix="fwcfg-agent-$$version/" \
	  -o "$$tmp/SOURCES/fwcfg-agent-$$version.tar.gz" HEAD
	git show HEAD:packaging/rpm/fwcfg-agent.spec > "$$tmp/SPECS/fwcfg-agent.spec"
	# --nodeps: the build dependencies are Debian packages here, which rpm's database
	# does not know about. Debian's brp-compress needs bash (`read -d`) but says #!/bin/sh.
	$(PKG_ENV) rpmbuild -bb --nodeps --define "_topdir $$tmp" \
	  --define "__brp_compress /bin/bash /usr/lib/rpm/brp-compress %{?_prefix}" \
	  "$$tmp/SPECS/fwcfg-agent.spec" >&2
	mkdir -p dist
	rpm=$$(cd "$$tmp/RPMS" && ls */fwcfg-agent-*.rpm)
	cp "$$tmp/RPMS/$$rpm" dist/
	echo "dist/$$(basename "$$rpm")"
