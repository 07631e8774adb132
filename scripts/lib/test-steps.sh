# Sourced by the test scripts (scripts/test.sh, scripts/test-sanitizers.sh): the repository as
# the working directory, the tools on PATH, ccache hits across checkout directories (CI builds
# in a new clone each time), and step() to say each step with the seconds so far.
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export PATH=$PATH:/usr/local/go/bin:/usr/sbin
export CCACHE_BASEDIR=$PWD CCACHE_NOHASHDIR=true

start=$SECONDS
step() { echo "== $* ($((SECONDS - start)) s)"; }
