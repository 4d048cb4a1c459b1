# Shared by scripts/test and scripts/playground: install what a fresh Debian/Ubuntu
# machine lacks. Sourced, not run.

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=
apt_install() {
  if [ -z "$apt_updated" ]; then
    as_root apt-get update -qq
    apt_updated=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

have_mariadb() {
  { command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ]; } &&
    command -v mariadb-install-db >/dev/null && command -v mariadb >/dev/null
}

ensure_mariadb() {
  if ! have_mariadb; then
    echo "installing MariaDB (mariadb-server, mariadb-client) ..."
    apt_install mariadb-server mariadb-client
  fi
}

# The client tests run PyMySQL and mysql-connector-python from a virtualenv.
ensure_python_venv() {
  if ! command -v python3 >/dev/null || ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    echo "installing python3 and python3-venv ..."
    apt_install python3 python3-venv
  fi
}

ensure_node() {
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "installing nodejs and npm ..."
    apt_install nodejs npm
  fi
}

ensure_cargo() {
  if ! command -v cargo >/dev/null; then
    echo "cargo not found: install Rust (https://rustup.rs) and run this again" >&2
    exit 1
  fi
}
